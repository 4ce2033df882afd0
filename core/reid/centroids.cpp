#include "core/reid/centroids.h"

#include <algorithm>
#include <map>
#include <set>
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

RetrievalMetrics evaluate_centroids(const torch::Tensor& query_features,
                                    const std::vector<int>& q_pids,
                                    const std::vector<int>& q_camids,
                                    const torch::Tensor& gallery_features,
                                    const std::vector<int>& g_pids,
                                    const std::vector<int>& g_camids, Metric metric,
                                    const CentroidOptions& options) {
  check_ids(query_features, q_pids, q_camids, "query");
  check_ids(gallery_features, g_pids, g_camids, "gallery");
  if (query_features.size(1) != gallery_features.size(1))
    throw Error("query features have dimension " + std::to_string(query_features.size(1)) +
                " but gallery features have " + std::to_string(gallery_features.size(1)) +
                "; extract both with the same model");
  if (options.max_rank < 1)
    throw Error("centroid max_rank must be at least 1, got " + std::to_string(options.max_rank));
  if (std::find(q_camids.begin(), q_camids.end(), kCentroidCamid) != q_camids.end())
    throw Error("a query camid equals the reserved centroid camera id " +
                std::to_string(kCentroidCamid) + "; renumber the cameras");
  // Checked here so that a bad value is reported by image row, not by centroid row.
  check_finite_rows(query_features, "query");
  check_finite_rows(gallery_features, "gallery");

  std::vector<QueryOutcome> outcomes(q_pids.size());
  int64_t largest_gallery = 0;
  auto rank_group = [&](const std::vector<int64_t>& group, std::optional<int> exclude) {
    CentroidGallery gallery =
        build_centroid_gallery(gallery_features, g_pids, g_camids, exclude, options);
    if (gallery.pids.empty()) return;  // nothing to retrieve: every query of the group is skipped
    largest_gallery = std::max<int64_t>(largest_gallery, gallery.features.size(0));
    std::vector<int> pids, camids;
    for (int64_t q : group) {
      pids.push_back(q_pids[q]);
      camids.push_back(q_camids[q]);
    }
    torch::Tensor queries = query_features.index_select(0, index_tensor(group));
    std::vector<QueryOutcome> group_outcomes =
        rank_queries(pairwise_distance(queries, gallery.features, metric), pids, gallery.pids,
                     camids, gallery.camids);
    for (size_t i = 0; i < group.size(); ++i) outcomes[group[i]] = group_outcomes[i];
  };

  if (options.mode == CentroidMode::kPerQueryCamera) {
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

}  // namespace ppreid::reid
