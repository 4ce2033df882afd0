#include "core/reid/features.h"

#include <algorithm>

#include "core/reid/centroids.h"
#include "core/reid/evaluation.h"

namespace ppreid::reid {

FeatureSet extract_features(ReidModel& model, const data::Dataset& dataset, data::SplitKind split,
                            const data::TransformOptions& transform,
                            data::EvalLoaderOptions options) {
  return extract_features(model, dataset.root, dataset.split(split), transform, options);
}

FeatureSet extract_features(ReidModel& model, const std::filesystem::path& root,
                            std::vector<data::ImageRecord> records,
                            const data::TransformOptions& transform,
                            data::EvalLoaderOptions options, dist::Communicator* comm) {
  if (comm && comm->world_size() > 1) {
    // Whole batches per rank: a batch's features then come out of exactly the computation one
    // process does, bit for bit (a different batch split could change the float rounding).
    const auto n = static_cast<std::int64_t>(records.size());
    const std::int64_t size = std::max(1, options.batch_size);
    const std::int64_t batches = (n + size - 1) / size;
    const std::int64_t w = comm->world_size(), r = comm->rank();
    const std::int64_t first = std::min(n, batches * r / w * size);
    const std::int64_t last = std::min(n, batches * (r + 1) / w * size);
    std::vector<data::ImageRecord> mine(records.begin() + first, records.begin() + last);
    FeatureSet local = extract_features(model, root, std::move(mine), transform, options);
    FeatureSet all;
    all.features = comm->all_gather_rows(local.features, "evaluation features");
    auto gather_ints = [&](const std::vector<int>& v, const char* what) {
      torch::Tensor t = torch::tensor(std::vector<std::int64_t>(v.begin(), v.end()), torch::kInt64);
      torch::Tensor g = comm->all_gather_rows(t, what);
      return std::vector<int>(g.data_ptr<std::int64_t>(), g.data_ptr<std::int64_t>() + g.numel());
    };
    all.pids = gather_ints(local.pids, "evaluation identities");
    all.camids = gather_ints(local.camids, "evaluation cameras");
    return all;
  }
  model->eval();
  torch::NoGradGuard no_grad;
  FeatureSet out;
  if (records.empty()) {
    out.features = torch::empty({0, model->feature_dim()});
    return out;
  }
  data::EvalLoader loader(root, std::move(records), transform, options);
  std::vector<torch::Tensor> chunks;
  while (auto batch = loader.next()) {
    chunks.push_back(model->embed(batch->images));
    auto pids = batch->pids.accessor<std::int64_t, 1>();
    auto cams = batch->camids.accessor<std::int64_t, 1>();
    for (std::int64_t i = 0; i < batch->size(); ++i) {
      out.pids.push_back(static_cast<int>(pids[i]));
      out.camids.push_back(static_cast<int>(cams[i]));
    }
  }
  out.features = torch::cat(chunks).contiguous();
  return out;
}

data::TransformOptions test_transform(const CheckpointInfo& info) {
  data::TransformOptions transform;
  transform.height = info.height;
  transform.width = info.width;
  return transform;
}

nlohmann::json evaluate_model(ReidModel& model, const data::Dataset& dataset,
                              const data::TransformOptions& transform, const std::string& metric,
                              bool centroids, data::EvalLoaderOptions options,
                              dist::Communicator* comm, CentroidProtocol centroid_protocol) {
  FeatureSet q = extract_features(model, dataset.root, dataset.query, transform, options, comm);
  FeatureSet g = extract_features(model, dataset.root, dataset.gallery, transform, options, comm);
  Metric m = parse_metric(metric);
  nlohmann::json result = {{"instance", evaluate_features(q.features, q.pids, q.camids, g.features,
                                                          g.pids, g.camids, m)
                                            .to_json()}};
  if (centroids) {
    CentroidOptions centroid_options;
    centroid_options.protocol = centroid_protocol;
    result["centroid"] =
        centroid_metrics_json(evaluate_centroids(q.features, q.pids, q.camids, g.features, g.pids,
                                                 g.camids, m, centroid_options),
                              centroid_protocol);
  }
  return result;
}

}  // namespace ppreid::reid
