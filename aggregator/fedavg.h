#pragma once

#include <cstdint>
#include <vector>

#include "aggregator/strategy.h"

namespace ppreid::agg {

// FedAvg (McMahan et al. 2017): the new global weights are the mean of the sites' weights,
// weighted by their sample counts. Streaming and in place: updates are folded into one float64
// running sum (sum_i n_i w_i) as they arrive, two at a time: an update waits (by reference) until
// the next one arrives or finish(), and both are then added in one pass over the sum, which
// halves the float64 traffic per update. A round therefore holds at most three model sizes (the
// float64 sum = 2, one waiting update = 1) whatever the number of sites, and the result does
// not depend on the arrival order beyond float64 rounding (far below float32 resolution). Delta
// updates count as n_i (global + delta_i). Integer counters (num_batches_tracked) take the
// maximum.
class FedAvg : public Strategy {
 public:
  explicit FedAvg(StrategyConfig config);

  std::size_t held_bytes() const override;

  // Sum of the sample counts added this round.
  std::int64_t total_samples() const { return total_samples_; }

 protected:
  // The new value of floating-point tensor `i` of the global model from `sum` (float64, the
  // weighted sum of the updates; the mean is sum * scale, and `sum` may be overwritten). FedAvg:
  // the mean in the global's dtype. Server optimizers override this.
  virtual at::Tensor combine(std::size_t i, at::Tensor& sum, double scale);

  void on_begin() override;
  void on_add(const ModelUpdate& update) override;
  NamedTensors on_finish() override;
  void on_clear() override;

 private:
  // Adds the waiting update (weight pending_weight_) and, when given, `next` (weight w) to sums_.
  void fold_pending(const NamedTensors* next, double w);

  std::vector<at::Tensor> sums_;     // float64 sum_i n_i w_i per floating-point tensor
  std::vector<at::Tensor> counters_; // maximum per integer tensor
  bool summed_ = false;                 // sums_ hold values (else the next fold assigns)
  std::vector<at::Tensor> pending_;  // the update waiting for a partner (empty: none)
  double pending_weight_ = 0;
  std::int64_t delta_samples_ = 0;      // samples of delta updates: their n_i * global is added last
  std::int64_t total_samples_ = 0;
};

}  // namespace ppreid::agg
