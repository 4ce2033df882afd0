#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "aggregator/model_update.h"
#include "aggregator/strategy.h"

namespace ppreid::agg::fixtures {

// A miniature shared part: a weight, a bias, BatchNorm statistics and the int64 counter, named
// like ReidModel's.
inline NamedTensors small_model(float offset = 0.0f) {
  return {{"backbone.conv.weight", torch::arange(6, torch::kFloat32).view({2, 3}) + offset},
          {"neck.bias", torch::tensor({0.5f, -0.5f, 1.0f}) + offset},
          {"neck.running_mean", torch::tensor({0.1f, 0.2f, 0.3f}) + offset},
          {"neck.running_var", torch::tensor({1.0f, 2.0f, 3.0f}) + offset},
          {"neck.num_batches_tracked", torch::tensor(int64_t{10})}};
}

// A copy of `model` with every floating-point tensor drawn around `center` (seeded).
inline NamedTensors random_like(const NamedTensors& model, std::uint64_t seed, double center = 0.0,
                                double spread = 1.0) {
  torch::manual_seed(seed);
  NamedTensors out;
  for (const auto& [name, t] : model) {
    if (t.is_floating_point())
      out.emplace_back(name, torch::randn_like(t) * spread + center);
    else
      out.emplace_back(name, t.clone());
  }
  return out;
}

// "s<k>", built by appending (GCC 12 warns falsely on "s" + std::to_string(k) when inlined).
inline std::string site(std::size_t k) {
  std::string name = "s";
  name += std::to_string(k);
  return name;
}

inline ModelUpdate update_of(std::string site, std::int64_t round, std::int64_t samples,
                             NamedTensors tensors, UpdateKind kind = UpdateKind::kWeights) {
  ModelUpdate u;
  u.site = std::move(site);
  u.round = round;
  u.samples = samples;
  u.kind = kind;
  u.tensors = std::move(tensors);
  return u;
}

inline NamedTensors clone(const NamedTensors& tensors) {
  NamedTensors out;
  for (const auto& [name, t] : tensors) out.emplace_back(name, t.clone());
  return out;
}

// Largest absolute element-wise difference over all tensors (same names in the same order).
inline double max_abs_diff(const NamedTensors& a, const NamedTensors& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, (a[i].second.to(torch::kFloat64) - b[i].second.to(torch::kFloat64))
                                .abs()
                                .max()
                                .item<double>());
  return worst;
}

// A strategy config of `kind`; `trim` is the trimmed mean's share (StrategyConfig's default).
inline StrategyConfig config_of(StrategyKind kind, double trim = 0.1) {
  StrategyConfig c;
  c.kind = kind;
  c.trim_fraction = trim;
  return c;
}

}  // namespace ppreid::agg::fixtures
