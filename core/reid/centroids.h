#pragma once

#include <torch/torch.h>

#include <limits>
#include <optional>
#include <vector>

#include "core/reid/centroid_protocol.h"
#include "core/reid/distance.h"
#include "core/reid/evaluation.h"

namespace ppreid::reid {

// Centroid retrieval (Wieczorek et al. 2021, "On the Unreasonable Effectiveness of Centroids in
// Image Retrieval"): gallery identities are represented by means of their embeddings, queries
// stay single images. Three protocols (CentroidProtocol, centroid_protocol.h):
//
// kReference: centroids-reid as published (github.com/mikwieczorek/centroids-reid, commit
// a1825b7, 2022-03-17) with MODEL.USE_CENTROIDS and KEEP_CAMID_CENTROIDS = True, its default
// (config/defaults.py, configs/256_resnet50.yml). Rule by rule, with where it comes from:
//  - Junk images (pid -1) do not exist for the evaluation, neither as queries nor in the gallery
//    (datasets/market1501.py, Market1501._process_dir: "junk images are just ignored").
//  - For every gallery identity p (ascending pid) and every camera c in which p has QUERIES
//    (ascending camid), one centroid: the mean of p's gallery images from cameras != c. No
//    centroid if p has no gallery image outside c; a centroid whose set of source cameras was
//    already built for p is not built twice. Identities without queries - distractors (pid 0)
//    and gallery-only identities - get no centroid and are not in the ranking at all; query
//    identities without gallery images get none either (modelling/bases.py,
//    ModelBase.validation_create_centroids, respect_camids=True).
//    DEVIATION: that function reads the gallery images' cameras as camids[inds], indexes into
//    the query+gallery array with gallery-relative indices, i.e. it takes the camera of an
//    unrelated image (centroids-reid issues #21 and #41). We use each image's own camera, the
//    documented intent (defaults.py: centroids "do not come from the same camera as the
//    query") and the fix proposed in #21; the published figures carry that bug.
//  - The mean is of the raw (un-normalized) features (ModelBase._calculate_centroids: sum /
//    count); then queries AND centroids are L2-normalized as F.normalize does (x / max(|x|,
//    1e-12)) when TEST.FEAT_NORM = True, its default (utils/reid_metric.py, R1_mAP.compute).
//    CentroidOptions::normalize = false skips that step.
//  - Distance: SOLVER.DISTANCE_FUNC, default "euclidean": |q|^2 + |c|^2 - 2 q.c, not clamped
//    (reid_metric.py get_euclidean); "cosine": |1 - cos| clamped at 1e-12 on re-normalized rows
//    (get_cosine). Computed here per pair in float64 with a fixed summation order, so equal
//    vectors get bit-equal distances (a BLAS product may differ in the last bit by column).
//  - Ranking: ascending distance (reid_metric.py: np.argsort). Ties: numpy's default argsort
//    is not stable beyond 16 items, so the reference's tie order is unspecified; we break ties
//    by centroid order (the order above), i.e. a stable argsort.
//  - Per query (pid p, camera c): the centroids of p whose source cameras include c are removed
//    from its ranking; centroids of other identities stay whatever cameras they come from;
//    matches are the remaining centroids of p (utils/eval_reid.py, eval_func, respect_camids).
//  - A query with no match left is skipped: it counts neither in mAP nor in CMC (eval_func:
//    `if not np.any(orig_cmc): continue`); that includes identities seen by one camera only.
//  - AP = mean over matches of precision at the match's position; mAP = mean AP over the valid
//    queries; CMC@k = fraction of valid queries with a match in the first k
//    (eval_func, top_k_retrieval), reported at k = 1, 5, 10 (the reference also prints 20, 50).
//    CMC length = min(max_rank = 50, number of centroids) as eval_func truncates it.
//  - mINP (num_matches / position of the last match) is ppreid's addition; the reference does
//    not report it.
//
// kStrict: ppreid's earlier protocol. Queries are grouped by camera c; for each group every
// gallery identity other than distractors gets one centroid of its images from cameras != c
// (none if it has no such image), and each distractor image stays an item of its own. Compared
// with kReference it is HARDER because distractors and gallery-only identities stay in the
// ranking as negatives, and EASIER because the query camera's images of every identity are
// removed (the reference keeps other identities' same-camera images in their centroids). Only
// centroids are normalized (queries and distractors are used as given); distances come from
// pairwise_distance.
//
// kAllCameras: kStrict's handling of distractors and gallery-only identities, but one centroid
// per identity from ALL of its gallery images. Same-camera shots of the query's own identity
// leak into its centroid, so this is optimistic; queries count only where the instance
// protocol counts them (their identity has a gallery image from another camera).
struct CentroidOptions {
  CentroidProtocol protocol = CentroidProtocol::kReference;
  // kReference: L2-normalize queries and centroids (centroids-reid's TEST.FEAT_NORM). kStrict /
  // kAllCameras: L2-normalize centroids only - the mean of unit vectors is shorter than one,
  // which would bias Euclidean distances to L2-normalized queries.
  bool normalize = true;
  // kStrict / kAllCameras: gallery images with this pid are distractors, never averaged, each
  // its own gallery item. kReference needs no such rule (distractors have no queries).
  int distractor_pid = 0;
  int max_rank = 50;
};

// ---- kStrict / kAllCameras ---------------------------------------------------------------------

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
// `options.protocol` is not consulted (this is the kStrict / kAllCameras gallery).
CentroidGallery build_centroid_gallery(const torch::Tensor& gallery_features,
                                       const std::vector<int>& g_pids,
                                       const std::vector<int>& g_camids,
                                       std::optional<int> exclude_camid,
                                       const CentroidOptions& options);

// ---- kReference --------------------------------------------------------------------------------

struct ReferenceCentroids {
  torch::Tensor features;  // float64 [N, D], in centroid order (pid, then query camera)
  std::vector<int> pids;
  std::vector<std::vector<int>> cameras;  // ascending source cameras of each centroid
};

// The centroids of kReference (see above), from raw gallery features, normalized if
// `normalize`. Junk (pid -1) is ignored on both sides. May be empty (no identity has both
// queries and a gallery image from another camera).
ReferenceCentroids build_reference_centroids(const torch::Tensor& gallery_features,
                                             const std::vector<int>& g_pids,
                                             const std::vector<int>& g_camids,
                                             const std::vector<int>& q_pids,
                                             const std::vector<int>& q_camids, bool normalize);

// ---- all protocols -----------------------------------------------------------------------------

// Market-style metrics of single-image queries against the centroids of `options.protocol`.
// total_queries counts every query (kReference: every non-junk query); valid_queries those with
// a match left. Throws ppreid::Error on inconsistent sizes or dimensions, NaN/Inf features,
// max_rank < 1, an empty centroid gallery, and when no query is valid.
RetrievalMetrics evaluate_centroids(const torch::Tensor& query_features,
                                    const std::vector<int>& q_pids,
                                    const std::vector<int>& q_camids,
                                    const torch::Tensor& gallery_features,
                                    const std::vector<int>& g_pids,
                                    const std::vector<int>& g_camids, Metric metric,
                                    const CentroidOptions& options = {});

// metrics.to_json() plus {"protocol": to_string(protocol)}: every JSON that reports centroid
// figures names the protocol that produced them.
nlohmann::json centroid_metrics_json(const RetrievalMetrics& metrics, CentroidProtocol protocol);

}  // namespace ppreid::reid
