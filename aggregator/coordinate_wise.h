#pragma once

#include <utility>
#include <vector>

#include "aggregator/strategy.h"

namespace ppreid::agg {

// Coordinate-wise robust aggregation (Yin et al. 2018, "Byzantine-robust distributed learning"):
// for every coordinate the N sites' values are sorted and
//   median:        the middle value (N even: the mean of the two middle values),
//   trimmed_mean:  the mean of what is left after dropping floor(trim_fraction * N) values at
//                  each end (trim_fraction 0 is the plain, unweighted mean).
// One site sending huge values moves the result at most to the honest sites' range. Sample
// counts are ignored on purpose: a site could lie about them. Integer counters take the maximum.
//
// Memory: both need every update at once. add() keeps references to the update's tensors (a
// delta update is turned into weights first), so a round holds N model copies (N x 94 MB for a
// ResNet-50, 3 GB for 32 sites) plus the output. finish() streams over coordinates in blocks of
// 16 per thread: each block's N x 16 values are sorted with a Batcher odd-even merge network of
// SIMD min/max (pruned to the comparators the kept ranks need): no stacked copy, no branches.
class CoordinateWise : public Strategy {
 public:
  explicit CoordinateWise(StrategyConfig config);

  std::size_t held_bytes() const override;

  // The ranks [k, N - k) averaged for N updates: k = (N - 1) / 2 for the median.
  std::size_t trimmed_per_side(std::size_t n) const;

 protected:
  void on_add(const ModelUpdate& update) override;
  NamedTensors on_finish() override;
  void on_clear() override;

 private:
  std::vector<std::vector<at::Tensor>> kept_;  // [update][tensor], absolute weights
};

// Exposed for tests and the benchmark.
namespace detail {
// Comparators (i < j: min to i, max to j) of Batcher's odd-even merge sort for n inputs.
std::vector<std::pair<int, int>> sorting_network(int n);
// The comparators of `network` that the outputs at ranks [lo, hi) depend on.
std::vector<std::pair<int, int>> prune_network(const std::vector<std::pair<int, int>>& network,
                                               int lo, int hi);
// out[j] = mean of ranks [k, n - k) of {inputs[0][j], ..., inputs[n-1][j]}, float32 inputs of
// `numel` elements each, parallel over j.
void trimmed_mean_kernel(const std::vector<const float*>& inputs, float* out, std::int64_t numel,
                         int k);
}  // namespace detail

}  // namespace ppreid::agg
