#include "core/reid/evaluation.h"

#include <algorithm>
#include <limits>
#include <string>
#include <utility>

#include "core/util/error.h"

namespace ppreid::reid {
namespace {

// A gallery item's place in the stable ranking: distance first, gallery index on ties.
template <typename T>
struct Key {
  T distance;
  int index;
  bool operator<(const Key& o) const {
    return distance < o.distance || (distance == o.distance && index < o.index);
  }
};

// Number of items in [begin, end) whose key is not `excluded` and whose distance is below `d` (or
// at most `d` when `inclusive`). Written without branches so that the compiler vectorizes it.
template <typename T, typename K>
int count_ahead(const T* row, const K* keys, int begin, int end, K excluded, T d, bool inclusive) {
  int count = 0;
  if (inclusive) {
    for (int g = begin; g < end; ++g) count += (keys[g] != excluded) & (row[g] <= d);
  } else {
    for (int g = begin; g < end; ++g) count += (keys[g] != excluded) & (row[g] < d);
  }
  return count;
}

// Instead of sorting the whole gallery (O(G log G) per query), only the matches are sorted and,
// for each match, the items ranked ahead of it are counted in one vectorized pass (O(G m) with m
// matches, typically a dozen, and no data-dependent branch). The positions of the matches are
// all AP, CMC and INP need. An item ranks ahead of match (d, i) iff it is a ranked non-match and
// its distance is < d, or == d with a smaller index.
//
// `classify(q, row, matches)` appends the query's matches (distance, index) in any order and
// returns {keys, excluded}: an array over the gallery whose entry equals `excluded` exactly for
// the items that are NOT ranked non-matches (the matches and the removed items). For the Market
// protocol that is the gallery pids and the query's pid, with no extra pass over the gallery.
template <typename T, typename Classify>
void rank_range(const T* dist, int num_g, int64_t begin, int64_t end, Classify& classify,
                std::vector<QueryOutcome>& out) {
  std::vector<Key<T>> matches;
  for (int64_t q = begin; q < end; ++q) {
    const T* row = dist + q * num_g;
    bool nan = false;  // a NaN compares false with everything and would silently rank last
    for (int g = 0; g < num_g; ++g) nan |= row[g] != row[g];
    if (nan)
      throw Error("distance matrix row " + std::to_string(q) +
                  " (0-based query) contains NaN; check the features it was computed from");
    matches.clear();
    const auto [keys, excluded] = classify(q, row, matches);
    QueryOutcome& o = out[q];
    o = QueryOutcome{};
    if (matches.empty()) continue;
    std::sort(matches.begin(), matches.end());
    const int m = static_cast<int>(matches.size());
    double precision_sum = 0;
    for (int i = 0; i < m; ++i) {
      const Key<T> k = matches[i];
      const int position = i + count_ahead(row, keys, 0, k.index, excluded, k.distance, true) +
                           count_ahead(row, keys, k.index, num_g, excluded, k.distance, false);
      precision_sum += (i + 1.0) / (position + 1.0);
      if (i == 0) o.first_match = position;
      o.last_match = position;
    }
    o.valid = true;
    o.num_rel = m;
    o.ap = precision_sum / m;
  }
}

// Runs rank_range over every query on float32 or float64 distances (others are converted to
// float64). `make_classify()` is called once per block of queries, so the classifier it returns
// may own scratch buffers. Queries are independent and each writes only its own slot, so the
// result does not depend on the thread count.
template <typename MakeClassify>
std::vector<QueryOutcome> rank_all(const torch::Tensor& distmat,
                                   const MakeClassify& make_classify) {
  torch::Tensor d = distmat.to(torch::kCPU);
  if (d.scalar_type() != torch::kFloat32 && d.scalar_type() != torch::kFloat64)
    d = d.to(torch::kFloat64);
  d = d.contiguous();
  const int64_t num_q = d.size(0);
  const int num_g = static_cast<int>(d.size(1));  // check_distmat bounds it
  std::vector<QueryOutcome> out(num_q);
  parallel_row_blocks(num_q, 16, [&](int64_t begin, int64_t end) {
    auto classify = make_classify();
    if (d.scalar_type() == torch::kFloat32)
      rank_range(d.data_ptr<float>(), num_g, begin, end, classify, out);
    else
      rank_range(d.data_ptr<double>(), num_g, begin, end, classify, out);
  });
  return out;
}

void check_distmat(const torch::Tensor& distmat) {
  if (!distmat.defined() || distmat.dim() != 2 || !distmat.is_floating_point())
    throw Error("distance matrix must be a 2-D floating-point tensor [num_query, num_gallery]");
  const int64_t num_q = distmat.size(0), num_g = distmat.size(1);
  if (num_q == 0 || num_g == 0)
    throw Error("distance matrix is empty (" + std::to_string(num_q) + "x" + std::to_string(num_g) +
                "); evaluation needs at least one query and one gallery "
                "image");
  if (num_g > std::numeric_limits<int>::max())
    throw Error("gallery of " + std::to_string(num_g) + " images is too large to rank");
}

void check_sizes(const torch::Tensor& distmat, const std::vector<int>& q_pids,
                 const std::vector<int>& g_pids, const std::vector<int>& q_camids,
                 const std::vector<int>& g_camids) {
  check_distmat(distmat);
  check_entry_count(q_pids.size(), distmat, 0, "q_pids");
  check_entry_count(q_camids.size(), distmat, 0, "q_camids");
  check_entry_count(g_pids.size(), distmat, 1, "g_pids");
  check_entry_count(g_camids.size(), distmat, 1, "g_camids");
}

}  // namespace

void check_entry_count(std::size_t entries, const torch::Tensor& distmat, int dim,
                       const char* what) {
  const int64_t want = distmat.size(dim);
  if (static_cast<int64_t>(entries) != want)
    throw Error(std::string(what) + " has " + std::to_string(entries) + " entries but the " +
                "distance matrix has " + std::to_string(want) + (dim == 0 ? " rows" : " columns") +
                "; pass one id per " + (dim == 0 ? "query" : "gallery") + " image");
}

nlohmann::json RetrievalMetrics::to_json() const {
  return {{"mAP", map},
          {"rank1", rank1},
          {"rank5", rank5},
          {"rank10", rank10},
          {"mINP", minp},
          {"valid_queries", valid_queries},
          {"total_queries", total_queries}};
}

std::vector<QueryOutcome> rank_queries(const torch::Tensor& distmat, const std::vector<int>& q_pids,
                                       const std::vector<int>& g_pids,
                                       const std::vector<int>& q_camids,
                                       const std::vector<int>& g_camids) {
  check_sizes(distmat, q_pids, g_pids, q_camids, g_camids);
  const int num_g = static_cast<int>(g_pids.size());
  // Removed items (same pid, same camera) and matches are exactly the items with the query's
  // pid, so the gallery pids themselves mark what is not a ranked non-match.
  return rank_all(distmat, [&] {
    return [&](int64_t q, const auto* row, auto& matches) {
      const int pid = q_pids[q], cam = q_camids[q];
      for (int g = 0; g < num_g; ++g)
        if (g_pids[g] == pid && g_camids[g] != cam) matches.push_back({row[g], g});
      return std::pair<const int*, int>{g_pids.data(), pid};
    };
  });
}

std::vector<QueryOutcome> rank_queries(const torch::Tensor& distmat, const GalleryRoleFn& roles) {
  check_distmat(distmat);
  if (!roles) throw Error("rank_queries: no gallery role function given");
  const int num_g = static_cast<int>(distmat.size(1));
  return rank_all(distmat, [&] {
    // Per block of queries: the roles the function fills and the "not a ranked non-match" mask.
    return [&roles, num_g, role = std::vector<GalleryRole>(num_g),
            outside = std::vector<std::uint8_t>(num_g)](int64_t q, const auto* row,
                                                        auto& matches) mutable {
      std::fill(role.begin(), role.end(), GalleryRole::kNonMatch);
      roles(q, std::span<GalleryRole>(role));
      for (int g = 0; g < num_g; ++g) {
        outside[g] = role[g] != GalleryRole::kNonMatch;
        if (role[g] == GalleryRole::kMatch) matches.push_back({row[g], g});
      }
      return std::pair<const std::uint8_t*, std::uint8_t>{outside.data(), 1};
    };
  });
}

RetrievalMetrics summarize_outcomes(const std::vector<QueryOutcome>& outcomes, int cmc_length) {
  if (cmc_length < 1)
    throw Error("CMC length must be at least 1, got " + std::to_string(cmc_length));
  RetrievalMetrics m;
  m.total_queries = static_cast<int>(outcomes.size());
  std::vector<int64_t> first_at(cmc_length, 0);  // valid queries whose first match is at rank r
  int64_t within5 = 0, within10 = 0;
  double ap_sum = 0, inp_sum = 0;
  for (const QueryOutcome& o : outcomes) {
    if (!o.valid) continue;
    ++m.valid_queries;
    ap_sum += o.ap;
    inp_sum += static_cast<double>(o.num_rel) / (o.last_match + 1.0);
    if (o.first_match < cmc_length) ++first_at[o.first_match];
    within5 += o.first_match < 5;
    within10 += o.first_match < 10;
  }
  if (m.valid_queries == 0)
    throw Error("no query has a cross-camera match in the gallery (" +
                std::to_string(m.total_queries) +
                " queries); every query needs an image of the same person taken by another "
                "camera in the gallery - check the pids and camids of the query/gallery split");
  const double n = m.valid_queries;
  m.cmc.resize(cmc_length);
  int64_t cumulative = 0;
  for (int r = 0; r < cmc_length; ++r) {
    cumulative += first_at[r];
    m.cmc[r] = cumulative / n;
  }
  m.rank1 = m.cmc[0];
  m.rank5 = within5 / n;
  m.rank10 = within10 / n;
  m.map = ap_sum / n;
  m.minp = inp_sum / n;
  return m;
}

RetrievalMetrics evaluate_market(const torch::Tensor& distmat, const std::vector<int>& q_pids,
                                 const std::vector<int>& g_pids, const std::vector<int>& q_camids,
                                 const std::vector<int>& g_camids, int max_rank) {
  if (max_rank < 1) throw Error("max_rank must be at least 1, got " + std::to_string(max_rank));
  std::vector<QueryOutcome> outcomes = rank_queries(distmat, q_pids, g_pids, q_camids, g_camids);
  const int64_t num_g = distmat.size(1);
  return summarize_outcomes(outcomes, static_cast<int>(std::min<int64_t>(max_rank, num_g)));
}

RetrievalMetrics evaluate_features(const torch::Tensor& query_features,
                                   const std::vector<int>& q_pids, const std::vector<int>& q_camids,
                                   const torch::Tensor& gallery_features,
                                   const std::vector<int>& g_pids, const std::vector<int>& g_camids,
                                   Metric metric, int max_rank) {
  return evaluate_market(pairwise_distance(query_features, gallery_features, metric), q_pids,
                         g_pids, q_camids, g_camids, max_rank);
}

}  // namespace ppreid::reid
