#pragma once

#include <functional>
#include <string>
#include <vector>

#include "aggregator/strategy.h"

namespace ppreid::agg {

// The distance-based robust rules, with Flower's `aggregate_krum` / `aggregate_bulyan` as the
// reference semantics:
//   krum (Blanchard et al. 2017): every update is scored by the sum of its squared distances to
//     its k = max(1, n - f - 2) nearest other updates; the update with the lowest score (the
//     first on a tie, in arrival order) becomes the new global model.
//   multi_krum: the m lowest-scored updates (m = 0: n - f) are averaged, by sample count as
//     Flower does (`weighted: false`: uniformly, so a site's claimed count buys nothing).
//   bulyan (El Mhamdi et al. 2018): Krum is applied theta = n - 2f times, each time to the
//     updates not yet selected (scores recomputed on that set); then, per coordinate, the
//     beta = theta - 2f selected values closest to their median are averaged.
// Limits (checked, not assumed as in Flower's Krum): krum and multi_krum need n > 2f + 2 (and
// n >= m), bulyan n >= 4f + 3; fewer updates make finish() throw with the limit that failed.
// Distances cover every floating-point tensor (weights and BatchNorm statistics); integer
// counters are not compared (Flower would compare them too) and take the maximum over the
// selected updates.
//
// Memory: every update is kept by reference (N models), plus the N x N distances and, for
// bulyan, the selected delta updates turned into weights. finish() computes all distances in
// one blocked Gram pass (pairwise_distances.h), reading each update once.
class Krum : public Strategy {
 public:
  explicit Krum(StrategyConfig config);

  std::size_t held_bytes() const override;
  // {"selected": [sites], "scores": {site: score}} of the last finish() (empty before).
  nlohmann::json round_report() const override { return report_; }

 protected:
  void on_begin() override { report_ = nlohmann::json::object(); }
  void on_add(const ModelUpdate& update) override;
  NamedTensors on_finish() override;
  void on_clear() override;

 private:
  // The new global tensors: value(i, global tensor i) for floating-point ones, the maximum over
  // `chosen` for integer counters.
  NamedTensors combine(const std::vector<std::size_t>& chosen,
                       const std::function<at::Tensor(std::size_t, const at::Tensor&)>& value) const;
  NamedTensors average(const std::vector<std::size_t>& chosen, bool weighted) const;
  NamedTensors bulyan(const std::vector<std::size_t>& chosen) const;
  at::Tensor counter_max(std::size_t tensor, const std::vector<std::size_t>& chosen) const;

  std::vector<ModelUpdate> kept_;
  nlohmann::json report_ = nlohmann::json::object();
};

// Exposed for tests and the benchmark.
namespace detail {
// Krum scores of the updates `among` (indices into the n x n squared distances `dist`): for
// each, the sum of its max(1, |among| - f - 2) smallest distances to the others of `among`.
std::vector<double> krum_scores(const at::Tensor& dist, const std::vector<std::size_t>& among,
                                std::int64_t f);
// The indices of the `keep` lowest scores, lowest first; scores within 1e-9 (relative) of each
// other are a tie, won by the lower index.
std::vector<std::size_t> lowest(const std::vector<double>& scores, std::size_t keep);
// Bulyan's selection: theta = n - 2f rounds of Krum on the shrinking set; indices into dist.
std::vector<std::size_t> bulyan_select(const at::Tensor& dist, std::int64_t f);
// out[j] = mean of the `beta` values of {inputs[0][j], ...} closest to their median (the mean
// of the two middle ones for an even count), float32 inputs of `numel` elements.
void closest_to_median_kernel(const std::vector<const float*>& inputs, float* out,
                              std::int64_t numel, int beta);
}  // namespace detail

}  // namespace ppreid::agg
