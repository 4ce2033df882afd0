#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <span>
#include <vector>

#include "core/reid/distance.h"

namespace ppreid::reid {

// Retrieval quality under the Market-1501 protocol. All rates are fractions in [0, 1].
struct RetrievalMetrics {
  double map = 0, rank1 = 0, rank5 = 0, rank10 = 0, minp = 0;
  int valid_queries = 0;  // queries with at least one cross-camera match; the others are skipped
  int total_queries = 0;
  // cmc[r] = fraction of valid queries whose first match is within rank r + 1, for
  // r < min(max_rank, gallery size) as torchreid truncates it.
  std::vector<double> cmc;

  // {"mAP","rank1","rank5","rank10","mINP"} as fractions, {"valid_queries","total_queries"}
  // as integers.
  nlohmann::json to_json() const;
};

// What one query contributes; `rank_queries` exposes it so that other protocols (centroids)
// can evaluate query groups against different galleries and still average over all queries.
struct QueryOutcome {
  bool valid = false;    // at least one match survived the same-camera removal
  int num_rel = 0;       // number of matches
  int first_match = -1;  // 0-based position of the first match in the filtered ranking
  int last_match = -1;   // 0-based position of the last match in the filtered ranking
  double ap = 0;         // average precision
};

// The per-query core of `evaluate_market`: same inputs, one outcome per query, in query order.
// Accepts float32 or float64 distances (other floating types are converted to float64); float32
// values are compared as stored, so two distances tie exactly when their float32 values do.
std::vector<QueryOutcome> rank_queries(const torch::Tensor& distmat, const std::vector<int>& q_pids,
                                       const std::vector<int>& g_pids,
                                       const std::vector<int>& q_camids,
                                       const std::vector<int>& g_camids);

// What one gallery item is to one query, for protocols whose notion of a match is not "same pid"
// (e.g. the identity attack of core/privacy, where a de-identified image matches several pids).
enum class GalleryRole : std::uint8_t {
  kNonMatch = 0,  // ranked, not a match
  kMatch = 1,     // ranked, a match
  kRemoved = 2,   // left out of this query's ranking (like Market's same-pid-same-camera items)
};

// Fills `roles` (one entry per gallery item, all kNonMatch on entry) for query `query`. Called
// once per query, concurrently for different queries from several threads: it must not write
// shared state.
using GalleryRoleFn = std::function<void(std::int64_t query, std::span<GalleryRole> roles)>;

// The same ranking as `rank_queries` above (stable, ties by gallery index, AP/INP/first-match
// from the positions of the matches among the ranked items), with matches and removals given by
// `roles` instead of pids and camids. A query with no kMatch item is invalid (skipped). With
// roles "kRemoved if same pid and camera, else kMatch if same pid, else kNonMatch" it returns
// exactly what the pid/camid overload returns. Throws ppreid::Error on a distance matrix that is
// not 2-D floating point, is empty, or holds NaN.
std::vector<QueryOutcome> rank_queries(const torch::Tensor& distmat, const GalleryRoleFn& roles);

// Throws ppreid::Error "<what> has N entries but the distance matrix has M rows|columns" unless
// `entries` equals distmat.size(dim) (dim 0: one entry per query, 1: one per gallery image).
void check_entry_count(std::size_t entries, const torch::Tensor& distmat, int dim,
                       const char* what);

// Averages outcomes over the valid queries; `cmc_length` entries of CMC. Throws ppreid::Error if
// no outcome is valid.
RetrievalMetrics summarize_outcomes(const std::vector<QueryOutcome>& outcomes, int cmc_length);

// torchreid's `eval_market1501` (torchreid/metrics/rank.py), computed without sorting the whole
// gallery. For each query:
//  - gallery items with the query's pid AND camid are removed (same-camera shots are too easy);
//  - the rest is ranked by ascending distance; ties are broken by gallery index, i.e. the order
//    of a STABLE argsort (numpy's default quicksort is not stable, so torchreid's tie order is
//    unspecified; this is the deterministic choice);
//  - matches are the remaining items with the query's pid; a query with none is skipped;
//  - AP = mean over matches of precision at the match's position;
//  - INP = num_matches / (position of the last match + 1) (Ye et al.'s mINP).
// Distractors (pid 0) need no special case: they never share a query's pid.
// If the gallery has fewer than `max_rank` items the CMC is truncated to the gallery size as
// torchreid does. A valid query whose filtered ranking is shorter than the CMC counts as matched
// at every rank past its end (it matched within its whole ranking). rank5/rank10 are computed
// from the first-match positions, so they are defined even when max_rank < 10.
// Throws ppreid::Error on shape/size mismatches, NaN distances, max_rank < 1, and when no query
// has a cross-camera match in the gallery.
RetrievalMetrics evaluate_market(const torch::Tensor& distmat, const std::vector<int>& q_pids,
                                 const std::vector<int>& g_pids, const std::vector<int>& q_camids,
                                 const std::vector<int>& g_camids, int max_rank = 50);

// pairwise_distance + evaluate_market.
RetrievalMetrics evaluate_features(const torch::Tensor& query_features,
                                   const std::vector<int>& q_pids, const std::vector<int>& q_camids,
                                   const torch::Tensor& gallery_features,
                                   const std::vector<int>& g_pids, const std::vector<int>& g_camids,
                                   Metric metric, int max_rank = 50);

}  // namespace ppreid::reid
