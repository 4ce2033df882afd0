#include "aggregator/fedopt.h"

#include <unordered_map>

#include "core/util/error.h"

namespace ppreid::agg {

FedOpt::FedOpt(StrategyConfig config) : FedAvg(config) {
  if (config.kind != StrategyKind::kFedAdam && config.kind != StrategyKind::kFedYogi)
    throw Error("FedOpt is fedadam or fedyogi, not " + std::string(to_string(config.kind)));
}

bool FedOpt::optimized(const std::string& name, const torch::Tensor& t) {
  return !is_counter(t) && !is_batchnorm_statistic(name);
}

NamedTensors FedOpt::moment_layout(const NamedTensors& global) {
  NamedTensors layout;
  for (const char* prefix : {"m/", "v/"})
    for (const auto& [name, t] : global)
      if (optimized(name, t)) layout.emplace_back(prefix + name, t);
  return layout;
}

void FedOpt::init_moments(const NamedTensors& global) {
  names_.clear();
  m_.clear();
  v_.clear();
  const double tau2 = config_.tau * config_.tau;
  for (const auto& [name, t] : global) {
    if (!optimized(name, t)) continue;
    names_.push_back(name);
    m_.push_back(torch::zeros_like(t, torch::MemoryFormat::Contiguous));
    v_.push_back(torch::full_like(t, tau2, torch::MemoryFormat::Contiguous));
  }
}

void FedOpt::on_begin() {
  const NamedTensors& g = global();
  if (names_.empty()) init_moments(g);
  std::unordered_map<std::string, int> index;
  for (std::size_t s = 0; s < names_.size(); ++s) index.emplace(names_[s], static_cast<int>(s));
  slot_.assign(g.size(), -1);
  std::size_t found = 0;
  for (std::size_t i = 0; i < g.size(); ++i) {
    const auto& [name, t] = g[i];
    if (!optimized(name, t)) continue;
    auto it = index.find(name);
    if (it == index.end() || m_[it->second].sizes() != t.sizes())
      throw Error(std::string(to_string(kind())) + ": tensor '" + name +
                  "' of the global model has no optimizer moments of its shape; the model " +
                  "changed since the optimizer state was created");
    slot_[i] = it->second;
    ++found;
  }
  if (found != names_.size())
    throw Error(std::string(to_string(kind())) + ": the optimizer has moments for " +
                std::to_string(names_.size()) + " tensors but the global model has " +
                std::to_string(found) + " to optimize; the model changed");
  FedAvg::on_begin();
}

torch::Tensor FedOpt::combine(std::size_t i, torch::Tensor& sum, double scale) {
  if (slot_[i] < 0) return FedAvg::combine(i, sum, scale);
  torch::Tensor mean = sum.mul_(scale);
  const torch::Tensor& x = global()[i].second;
  torch::Tensor& m_store = m_[slot_[i]];
  torch::Tensor& v_store = v_[slot_[i]];
  const double b1 = config_.beta1, b2 = config_.beta2;

  torch::Tensor x64 = x.to(torch::kFloat64);
  torch::Tensor delta = mean.sub_(x64);  // reuses the mean's storage
  torch::Tensor delta2 = delta.square();
  torch::Tensor m = m_store.to(torch::kFloat64).mul_(b1).add_(delta, 1 - b1);
  torch::Tensor v = v_store.to(torch::kFloat64);
  if (kind() == StrategyKind::kFedAdam) {
    v.mul_(b2).add_(delta2, 1 - b2);
  } else {  // Yogi: v moves towards delta^2 by at most (1 - beta2) delta^2 per step
    v.sub_(delta2.mul_(torch::sign(v - delta2)), 1 - b2);
  }
  m_store.copy_(m);
  v_store.copy_(v);
  // The step uses the stored (rounded) moments, so a run restored from a checkpoint computes
  // exactly what the uninterrupted run would have.
  torch::Tensor step = m_store.to(torch::kFloat64)
                           .div_(v_store.to(torch::kFloat64).sqrt_().add_(config_.tau))
                           .mul_(config_.server_lr);
  return x64.add_(step).to(x.scalar_type());
}

NamedTensors FedOpt::on_finish() {
  NamedTensors out = FedAvg::on_finish();
  ++step_;
  return out;
}

std::size_t FedOpt::held_bytes() const {
  std::size_t bytes = FedAvg::held_bytes();
  for (const auto* moments : {&m_, &v_})
    for (const auto& t : *moments) bytes += t.numel() * t.element_size();
  return bytes;
}

StrategyState FedOpt::state() const {
  StrategyState s;
  s.kind = kind();
  s.meta = {{"step", step_}, {"config", config_.to_json()}};
  for (std::size_t k = 0; k < names_.size(); ++k) s.tensors.emplace_back("m/" + names_[k], m_[k]);
  for (std::size_t k = 0; k < names_.size(); ++k) s.tensors.emplace_back("v/" + names_[k], v_[k]);
  return s;
}

void FedOpt::restore(const StrategyState& state, const NamedTensors& global) {
  require_kind(state);
  const std::string who = std::string(to_string(kind()));
  std::int64_t step = -1;
  if (state.meta.contains("step") && state.meta.at("step").is_number_integer())
    step = state.meta.at("step").get<std::int64_t>();
  if (step < 0)
    throw Error("the saved " + who + " state has no valid step count (meta: " +
                state.meta.dump() + ")");
  if (step == 0 && state.tensors.empty()) {  // saved before the first round: fresh moments
    names_.clear();
    step_ = 0;
    return;
  }
  std::string difference = structure_difference(moment_layout(global), state.tensors);
  if (!difference.empty())
    throw Error("the saved " + who + " moments do not match the global model: " + difference);
  std::unordered_map<std::string, torch::Tensor> by_name;
  for (const auto& [name, t] : state.tensors) {
    if (!torch::isfinite(t).all().item<bool>())
      throw Error("the saved " + who + " moment '" + name + "' holds NaN or Inf");
    if (name.rfind("v/", 0) == 0 && (t < 0).any().item<bool>())
      throw Error("the saved " + who + " second moment '" + name + "' has negative entries");
    by_name.emplace(name, t);
  }
  init_moments(global);  // names in the global's order
  for (std::size_t k = 0; k < names_.size(); ++k) {
    m_[k].copy_(by_name.at("m/" + names_[k]));
    v_[k].copy_(by_name.at("v/" + names_[k]));
  }
  step_ = step;
}

}  // namespace ppreid::agg
