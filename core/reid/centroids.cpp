#include "core/reid/centroids.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <span>
#include <string>

#include "core/util/error.h"

namespace ppreid::reid {
namespace {

void check_ids(const torch::Tensor& features, const std::vector<int>& pids,
               const std::vector<int>& camids, const char* what) {
  if (!features.defined() || features.dim() != 2 || features.size(0) == 0)
    throw Error(std::string(what) + " features must be a non-empty 2-D tensor [N, D]");
  const auto n = static_cast<size_t>(features.size(0));
  if (pids.size() != n || camids.size() != n)
    throw Error(std::string(what) + " has " + std::to_string(n) + " feature rows but " +
                std::to_string(pids.size()) + " pids and " + std::to_string(camids.size()) +
                " camids; pass one pid and one camid per image");
}

torch::Tensor index_tensor(const std::vector<int64_t>& indices) {
  return torch::tensor(indices, torch::kLong);
}

}  // namespace

CentroidGallery build_centroid_gallery(const torch::Tensor& gallery_features,
                                       const std::vector<int>& g_pids,
                                       const std::vector<int>& g_camids,
                                       std::optional<int> exclude_camid,
                                       const CentroidOptions& options) {
  check_ids(gallery_features, g_pids, g_camids, "gallery");
  torch::NoGradGuard no_grad;
  torch::Tensor feats = gallery_features.to(torch::kCPU, torch::kFloat64).contiguous();
  const int64_t dim = feats.size(1);

  std::map<int, int64_t> slot_of_pid;  // ascending pid -> centroid slot
  for (int pid : g_pids)
    if (pid != options.distractor_pid) slot_of_pid.emplace(pid, 0);
  int64_t next = 0;
  for (auto& [pid, slot] : slot_of_pid) slot = next++;

  std::vector<int64_t> members, member_slots, distractors;
  std::vector<int64_t> counts(slot_of_pid.size(), 0);
  for (size_t i = 0; i < g_pids.size(); ++i) {
    if (g_pids[i] == options.distractor_pid) {
      distractors.push_back(static_cast<int64_t>(i));
    } else if (!exclude_camid || g_camids[i] != *exclude_camid) {
      const int64_t slot = slot_of_pid.at(g_pids[i]);
      members.push_back(static_cast<int64_t>(i));
      member_slots.push_back(slot);
      ++counts[slot];
    }
  }

  CentroidGallery out;
  torch::Tensor sums =
      torch::zeros({static_cast<int64_t>(slot_of_pid.size()), dim}, torch::dtype(torch::kFloat64));
  if (!members.empty())
    sums.index_add_(0, index_tensor(member_slots), feats.index_select(0, index_tensor(members)));
  std::vector<int64_t> kept;  // identities with at least one image outside the excluded camera
  std::vector<double> kept_counts;
  for (const auto& [pid, slot] : slot_of_pid) {
    if (counts[slot] == 0) continue;
    kept.push_back(slot);
    kept_counts.push_back(static_cast<double>(counts[slot]));
    out.pids.push_back(pid);
    out.camids.push_back(kCentroidCamid);
  }
  torch::Tensor centroids = sums.index_select(0, index_tensor(kept)) /
                            torch::tensor(kept_counts, torch::kFloat64).unsqueeze(1);
  if (options.normalize) centroids = centroids / centroids.norm(2, 1, true).clamp_min(1e-12);

  for (int64_t i : distractors) {
    out.pids.push_back(g_pids[i]);
    out.camids.push_back(g_camids[i]);
  }
  out.features =
      torch::cat({centroids, feats.index_select(0, index_tensor(distractors))}, 0).contiguous();
  return out;
}

namespace {

// Market's junk label; centroids-reid drops such images when it reads the dataset.
constexpr int kJunkPid = -1;

// The float64 arithmetic of the reference protocol is written out with a fixed, sequential order
// of operations (no BLAS, no vectorized reduction): equal vectors then get bit-equal results, so
// exact ties stay ties, and tests/reference/eval_centroids_reference.py, which performs the same
// operations in the same order, agrees bit for bit.
double sequential_dot(const double* a, const double* b, int64_t dim) {
  double s = 0;
  for (int64_t k = 0; k < dim; ++k) s += a[k] * b[k];
  return s;
}

// F.normalize(x, p=2, dim=1): divide by max(|x|, 1e-12), so a zero row stays zero.
void normalize_rows_sequential(torch::Tensor& rows) {
  const int64_t n = rows.size(0), dim = rows.size(1);
  double* p = rows.data_ptr<double>();
  for (int64_t i = 0; i < n; ++i) {
    double* r = p + i * dim;
    const double denom = std::max(std::sqrt(sequential_dot(r, r, dim)), 1e-12);
    for (int64_t k = 0; k < dim; ++k) r[k] /= denom;
  }
}

// centroids-reid's get_euclidean (|q|^2 + |c|^2 - 2 q.c, not clamped) or get_cosine
// (|1 - cos| clamped at 1e-12, on rows normalized once more), float64 [Q, C].
torch::Tensor reference_distances(const torch::Tensor& queries, const torch::Tensor& centroids,
                                  Metric metric) {
  torch::Tensor q = queries.clone(), c = centroids.clone();
  if (metric == Metric::kCosine) {
    normalize_rows_sequential(q);
    normalize_rows_sequential(c);
  }
  const int64_t num_q = q.size(0), num_c = c.size(0), dim = q.size(1);
  const double* qp = q.data_ptr<double>();
  const double* cp = c.data_ptr<double>();
  std::vector<double> cc(num_c);
  for (int64_t j = 0; j < num_c; ++j) cc[j] = sequential_dot(cp + j * dim, cp + j * dim, dim);
  torch::Tensor out = torch::empty({num_q, num_c}, torch::kFloat64);
  double* op = out.data_ptr<double>();
  parallel_row_blocks(num_q, 8, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const double* qi = qp + i * dim;
      const double qq = sequential_dot(qi, qi, dim);
      for (int64_t j = 0; j < num_c; ++j) {
        const double qc = sequential_dot(qi, cp + j * dim, dim);
        op[i * num_c + j] = metric == Metric::kCosine ? std::max(std::fabs(1.0 - qc), 1e-12)
                                                      : (qq + cc[j]) - 2.0 * qc;
      }
    }
  });
  return out;
}

// One split's features with their labels, as evaluate_centroids receives them.
struct LabelledSplit {
  const torch::Tensor& features;
  const std::vector<int>& pids;
  const std::vector<int>& camids;
};

void check_centroid_inputs(const LabelledSplit& query, const LabelledSplit& gallery,
                           const CentroidOptions& options) {
  check_ids(query.features, query.pids, query.camids, "query");
  check_ids(gallery.features, gallery.pids, gallery.camids, "gallery");
  if (query.features.size(1) != gallery.features.size(1))
    throw Error("query features have dimension " + std::to_string(query.features.size(1)) +
                " but gallery features have " + std::to_string(gallery.features.size(1)) +
                "; extract both with the same model");
  if (options.max_rank < 1)
    throw Error("centroid max_rank must be at least 1, got " + std::to_string(options.max_rank));
  // Checked here so that a bad value is reported by image row, not by centroid row.
  check_finite_rows(query.features, "query");
  check_finite_rows(gallery.features, "gallery");
}

RetrievalMetrics evaluate_reference(const LabelledSplit& query, const LabelledSplit& gallery,
                                    Metric metric, const CentroidOptions& options) {
  const std::vector<int>& q_pids = query.pids;
  std::vector<int64_t> kept;  // non-junk queries
  std::vector<int> pids, camids;
  for (size_t q = 0; q < q_pids.size(); ++q) {
    if (q_pids[q] == kJunkPid) continue;
    kept.push_back(static_cast<int64_t>(q));
    pids.push_back(q_pids[q]);
    camids.push_back(query.camids[q]);
  }
  if (kept.empty())
    throw Error(
        "every query has pid -1 (junk, ignored by the reference protocol); there is "
        "nothing to evaluate");
  ReferenceCentroids centroids = build_reference_centroids(
      gallery.features, gallery.pids, gallery.camids, query.pids, query.camids, options.normalize);
  if (centroids.pids.empty())
    throw Error(
        "the reference protocol built no centroid: no query identity has gallery images from "
        "a camera other than its query camera; check the pids and camids of the query/gallery "
        "split");
  torch::NoGradGuard no_grad;
  torch::Tensor queries = query.features.to(torch::kCPU, torch::kFloat64)
                              .index_select(0, index_tensor(kept))
                              .contiguous();
  if (options.normalize) normalize_rows_sequential(queries);
  const torch::Tensor distmat = reference_distances(queries, centroids.features, metric);
  // A centroid of the query's identity is removed if it was built from the query's camera,
  // a match otherwise; every other centroid is a negative.
  auto roles = [&](int64_t q, std::span<GalleryRole> role) {
    for (size_t j = 0; j < centroids.pids.size(); ++j) {
      if (centroids.pids[j] != pids[q]) continue;
      const auto& cams = centroids.cameras[j];
      role[j] = std::binary_search(cams.begin(), cams.end(), camids[q]) ? GalleryRole::kRemoved
                                                                        : GalleryRole::kMatch;
    }
  };
  const std::vector<QueryOutcome> outcomes = rank_queries(distmat, roles);
  const int64_t num_centroids = static_cast<int64_t>(centroids.pids.size());
  return summarize_outcomes(outcomes,
                            static_cast<int>(std::min<int64_t>(options.max_rank, num_centroids)));
}

RetrievalMetrics evaluate_strict(const LabelledSplit& query, const LabelledSplit& gallery,
                                 Metric metric, const CentroidOptions& options) {
  const std::vector<int>& q_pids = query.pids;
  const std::vector<int>& q_camids = query.camids;
  const std::vector<int>& g_pids = gallery.pids;
  const std::vector<int>& g_camids = gallery.camids;
  if (std::find(q_camids.begin(), q_camids.end(), kCentroidCamid) != q_camids.end())
    throw Error("a query camid equals the reserved centroid camera id " +
                std::to_string(kCentroidCamid) + "; renumber the cameras");
  std::vector<QueryOutcome> outcomes(q_pids.size());
  int64_t largest_gallery = 0;
  auto rank_group = [&](const std::vector<int64_t>& group, std::optional<int> exclude) {
    CentroidGallery items =
        build_centroid_gallery(gallery.features, g_pids, g_camids, exclude, options);
    if (items.pids.empty()) return;  // nothing to retrieve: every query of the group is skipped
    largest_gallery = std::max<int64_t>(largest_gallery, items.features.size(0));
    std::vector<int> pids, camids;
    for (int64_t q : group) {
      pids.push_back(q_pids[q]);
      camids.push_back(q_camids[q]);
    }
    torch::Tensor queries = query.features.index_select(0, index_tensor(group));
    std::vector<QueryOutcome> group_outcomes = rank_queries(
        pairwise_distance(queries, items.features, metric), pids, items.pids, camids, items.camids);
    for (size_t i = 0; i < group.size(); ++i) outcomes[group[i]] = group_outcomes[i];
  };

  if (options.protocol == CentroidProtocol::kStrict) {
    std::map<int, std::vector<int64_t>> by_camera;
    for (size_t q = 0; q < q_camids.size(); ++q)
      by_camera[q_camids[q]].push_back(static_cast<int64_t>(q));
    for (const auto& [camid, group] : by_camera) rank_group(group, camid);
  } else {
    std::vector<int64_t> all(q_pids.size());
    for (size_t q = 0; q < all.size(); ++q) all[q] = static_cast<int64_t>(q);
    rank_group(all, std::nullopt);
    // Keep the instance protocol's set of valid queries, so that both tables average over the
    // same queries: a query counts only if its person appears in another camera of the gallery.
    std::map<int, std::set<int>> cameras_of_pid;
    for (size_t i = 0; i < g_pids.size(); ++i) cameras_of_pid[g_pids[i]].insert(g_camids[i]);
    for (size_t q = 0; q < q_pids.size(); ++q) {
      auto it = cameras_of_pid.find(q_pids[q]);
      const bool cross_camera = it != cameras_of_pid.end() &&
                                (it->second.size() > 1 || !it->second.contains(q_camids[q]));
      if (!cross_camera) outcomes[q].valid = false;
    }
  }
  if (largest_gallery == 0)
    throw Error(
        "the centroid gallery is empty for every query camera; the gallery needs images "
        "of identities seen by another camera");
  return summarize_outcomes(outcomes,
                            static_cast<int>(std::min<int64_t>(options.max_rank, largest_gallery)));
}

}  // namespace

ReferenceCentroids build_reference_centroids(const torch::Tensor& gallery_features,
                                             const std::vector<int>& g_pids,
                                             const std::vector<int>& g_camids,
                                             const std::vector<int>& q_pids,
                                             const std::vector<int>& q_camids, bool normalize) {
  check_ids(gallery_features, g_pids, g_camids, "gallery");
  if (q_pids.size() != q_camids.size())
    throw Error("query has " + std::to_string(q_pids.size()) + " pids but " +
                std::to_string(q_camids.size()) + " camids; pass one of each per image");
  torch::NoGradGuard no_grad;
  const torch::Tensor feats = gallery_features.to(torch::kCPU, torch::kFloat64).contiguous();
  const int64_t dim = feats.size(1);
  const double* fp = feats.data_ptr<double>();

  std::map<int, std::vector<int64_t>> images_of;  // ascending pid -> gallery rows, in order
  for (size_t i = 0; i < g_pids.size(); ++i)
    if (g_pids[i] != kJunkPid) images_of[g_pids[i]].push_back(static_cast<int64_t>(i));
  std::map<int, std::set<int>> query_cameras_of;
  for (size_t q = 0; q < q_pids.size(); ++q)
    if (q_pids[q] != kJunkPid) query_cameras_of[q_pids[q]].insert(q_camids[q]);

  ReferenceCentroids out;
  std::vector<double> values;
  for (const auto& [pid, rows] : images_of) {
    auto cams = query_cameras_of.find(pid);
    if (cams == query_cameras_of.end()) continue;  // no queries: no centroid
    std::set<std::vector<int>> built;
    for (int query_cam : cams->second) {
      std::vector<int64_t> members;
      std::set<int> sources;
      for (int64_t r : rows) {
        if (g_camids[r] == query_cam) continue;
        members.push_back(r);
        sources.insert(g_camids[r]);
      }
      if (members.empty()) continue;
      std::vector<int> cameras(sources.begin(), sources.end());
      if (!built.insert(cameras).second) continue;  // the same images as an earlier centroid
      std::vector<double> mean(dim, 0.0);
      for (int64_t r : members)
        for (int64_t k = 0; k < dim; ++k) mean[k] += fp[r * dim + k];
      for (double& v : mean) v /= static_cast<double>(members.size());
      values.insert(values.end(), mean.begin(), mean.end());
      out.pids.push_back(pid);
      out.cameras.push_back(std::move(cameras));
    }
  }
  out.features = torch::tensor(values, torch::kFloat64)
                     .reshape({static_cast<int64_t>(out.pids.size()), dim})
                     .contiguous();
  if (normalize) normalize_rows_sequential(out.features);
  return out;
}

RetrievalMetrics evaluate_centroids(const torch::Tensor& query_features,
                                    const std::vector<int>& q_pids,
                                    const std::vector<int>& q_camids,
                                    const torch::Tensor& gallery_features,
                                    const std::vector<int>& g_pids,
                                    const std::vector<int>& g_camids, Metric metric,
                                    const CentroidOptions& options) {
  const LabelledSplit query{query_features, q_pids, q_camids};
  const LabelledSplit gallery{gallery_features, g_pids, g_camids};
  check_centroid_inputs(query, gallery, options);
  return options.protocol == CentroidProtocol::kReference
             ? evaluate_reference(query, gallery, metric, options)
             : evaluate_strict(query, gallery, metric, options);
}

nlohmann::json centroid_metrics_json(const RetrievalMetrics& metrics, CentroidProtocol protocol) {
  nlohmann::json j = metrics.to_json();
  j["protocol"] = to_string(protocol);
  return j;
}

}  // namespace ppreid::reid
