#include "core/reid/features.h"

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
                            data::EvalLoaderOptions options) {
  model->eval();
  torch::NoGradGuard no_grad;
  data::EvalLoader loader(root, std::move(records), transform, options);
  std::vector<torch::Tensor> chunks;
  FeatureSet out;
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
                              bool centroids, data::EvalLoaderOptions options) {
  FeatureSet q = extract_features(model, dataset, data::SplitKind::kQuery, transform, options);
  FeatureSet g = extract_features(model, dataset, data::SplitKind::kGallery, transform, options);
  Metric m = parse_metric(metric);
  nlohmann::json result = {{"instance", evaluate_features(q.features, q.pids, q.camids, g.features,
                                                          g.pids, g.camids, m)
                                            .to_json()}};
  if (centroids)
    result["centroid"] =
        evaluate_centroids(q.features, q.pids, q.camids, g.features, g.pids, g.camids, m)
            .to_json();
  return result;
}

}  // namespace ppreid::reid
