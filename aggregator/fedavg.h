#pragma once

#include <cstdint>
#include <vector>

#include "aggregator/strategy.h"

namespace ppreid::agg {

// FedAvg (McMahan et al. 2017): the new global weights are the mean of the sites' weights,
// weighted by their sample counts. Streaming and in place: each update is added to one float64
// running sum (sum_i n_i w_i) as it arrives and can be freed right after, so a round holds two
// model sizes (the float64 sum) whatever the number of sites, and the result does not depend on
// the arrival order beyond float64 rounding (far below float32 resolution). Delta updates add
// n_i (global + delta_i). Integer counters (num_batches_tracked) take the maximum.
class FedAvg : public Strategy {
 public:
  explicit FedAvg(StrategyConfig config);

  void begin_round(const NamedTensors& global) override;
  void add(const ModelUpdate& update) override;
  std::size_t num_updates() const override { return count_; }
  NamedTensors finish() override;
  void abandon() override;
  std::size_t held_bytes() const override;

  // Sum of the sample counts added this round.
  std::int64_t total_samples() const { return total_samples_; }

 protected:
  // The new value of tensor `i` of the global model from `mean`, the weighted mean of the
  // updates in float64 (for counters: their maximum, in the tensor's dtype). FedAvg: the mean
  // itself in the global's dtype. Server optimizers override this.
  virtual torch::Tensor combine(std::size_t i, torch::Tensor mean);

  const NamedTensors& global() const { return global_; }

 private:
  void require_round(const char* what) const;

  bool in_round_ = false;
  NamedTensors global_;
  std::vector<torch::Tensor> sums_;  // float64 sum_i n_i w_i, or the counters' maximum
  std::int64_t total_samples_ = 0;
  std::size_t count_ = 0;
};

}  // namespace ppreid::agg
