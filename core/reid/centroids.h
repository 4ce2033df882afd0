#pragma once

#include <torch/torch.h>

#include <limits>
#include <optional>
#include <vector>

#include "core/reid/distance.h"
#include "core/reid/evaluation.h"

namespace ppreid::reid {

// Centroid retrieval (Wieczorek et al. 2021, "On the Unreasonable Effectiveness of Centroids in
// Image Retrieval"): each gallery identity is represented by the mean of its embeddings, queries
// stay single images.
enum class CentroidMode {
  // For each query camera c, identity p's centroid averages p's gallery images from cameras != c,
  // so the Market rule "same person, same camera does not count" still holds and the valid
  // queries are exactly those of the instance protocol. Identities with no image outside c have
  // no centroid for c.
  kPerQueryCamera,
  // One centroid per identity from all of its gallery images. Same-camera shots leak into the
  // centroid and cannot be removed, so this is optimistic; it is here to compare with papers
  // that report it. Queries are still counted only if the instance protocol counts them.
  kAllCameras,
};

struct CentroidOptions {
  CentroidMode mode = CentroidMode::kPerQueryCamera;
  // L2-normalize every centroid: the mean of unit vectors is shorter than one, which would bias
  // Euclidean distances to L2-normalized queries. Distractor images are left as they are; with
  // unnormalized features use the cosine metric or normalize = false.
  bool normalize = true;
  // Gallery images with this pid are distractors: never averaged, each stays its own gallery item.
  int distractor_pid = 0;
  int max_rank = 50;
};

// Centroids carry this camera id so that the evaluation's same-camera removal never touches them
// (the camera rule was applied while building them).
inline constexpr int kCentroidCamid = std::numeric_limits<int>::min();

struct CentroidGallery {
  torch::Tensor features;  // float64 [N, D]: centroids (ascending pid), then distractor images
  std::vector<int> pids;
  std::vector<int> camids;  // kCentroidCamid for centroids, the image's camera for distractors
};

// Builds the gallery seen by queries of camera `exclude_camid` (images of that camera do not
// enter any centroid; distractors of every camera stay), or by every query if it is nullopt.
CentroidGallery build_centroid_gallery(const torch::Tensor& gallery_features,
                                       const std::vector<int>& g_pids,
                                       const std::vector<int>& g_camids,
                                       std::optional<int> exclude_camid,
                                       const CentroidOptions& options);

// Market-protocol metrics of single-image queries against centroid galleries. Queries are grouped
// by camera and each group is ranked against its own gallery (one distance matrix per group);
// ties are broken by gallery order (centroids by ascending pid, then distractors in input order).
// The CMC is truncated to the largest per-camera gallery if that is shorter than max_rank.
RetrievalMetrics evaluate_centroids(const torch::Tensor& query_features,
                                    const std::vector<int>& q_pids,
                                    const std::vector<int>& q_camids,
                                    const torch::Tensor& gallery_features,
                                    const std::vector<int>& g_pids,
                                    const std::vector<int>& g_camids, Metric metric,
                                    const CentroidOptions& options = {});

}  // namespace ppreid::reid
