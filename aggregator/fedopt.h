#pragma once

#include <cstdint>
#include <vector>

#include "aggregator/fedavg.h"

namespace ppreid::agg {

// FedAdam and FedYogi, the adaptive server optimizers of Reddi et al. 2021, "Adaptive
// Federated Optimization" (Algorithm 2). The updates are averaged like FedAvg (streaming,
// weighted by samples); with x the global weights and avg that mean, the server takes one step
//   delta = avg - x                      (the pseudo-gradient is -delta = x - avg)
//   m     = beta1 m + (1 - beta1) delta
//   v     = beta2 v + (1 - beta2) delta^2                          (FedAdam)
//   v     = v - (1 - beta2) delta^2 sign(v - delta^2)              (FedYogi)
//   x'    = x + server_lr m / (sqrt(v) + tau)
// per coordinate, with m starting at 0 and v at tau^2 and, as in the paper, no bias correction.
// The step is computed in float64 from the float64 mean. m and v (float32, two model sizes) are
// the state a checkpoint must keep (state(): tensors "m/NAME" and "v/NAME", meta {"step": t}).
// Only weights are optimized: BatchNorm running statistics take the plain mean (a server step
// could make a variance negative) and integer counters the maximum.
class FedOpt : public FedAvg {
 public:
  explicit FedOpt(StrategyConfig config);

  std::size_t held_bytes() const override;

  // Shares the moment tensors (no copy): serialize it (StateStore::save) before the next
  // finish(), which updates them in place.
  StrategyState state() const override;
  void restore(const StrategyState& state, const NamedTensors& global) override;

  // Server steps taken so far (rounds completed with this optimizer).
  std::int64_t step() const { return step_; }

 protected:
  void on_begin() override;
  NamedTensors on_finish() override;
  at::Tensor combine(std::size_t i, at::Tensor& sum, double scale) override;

 private:
  // The names "m/NAME", "v/NAME" with the global tensors' shapes and dtypes that a restored
  // state must match (the values are the global's; only the structure is compared).
  static NamedTensors moment_layout(const NamedTensors& global);
  static bool optimized(const std::string& name, const at::Tensor& t);
  void init_moments(const NamedTensors& global);

  std::vector<std::string> names_;  // optimized tensor names, in the global's order
  std::vector<at::Tensor> m_, v_;
  std::vector<int> slot_;           // index into m_/v_ for each global tensor, -1 if not optimized
  std::int64_t step_ = 0;
};

}  // namespace ppreid::agg
