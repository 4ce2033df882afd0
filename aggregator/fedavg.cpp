#include "aggregator/fedavg.h"

#include "aggregator/tensor_kernels.h"

namespace ppreid::agg {

FedAvg::FedAvg(StrategyConfig config) : Strategy(config) {}

void FedAvg::on_begin() {
  sums_.resize(global().size());
  counters_.resize(global().size());
}

void FedAvg::fold_pending(const NamedTensors* next, double w) {
  const NamedTensors& g = global();
  for (std::size_t i = 0; i < g.size(); ++i) {
    if (!pending_[i].defined()) continue;  // a counter
    if (!summed_)
      sums_[i] = torch::empty(g[i].second.sizes(), g[i].second.options().dtype(torch::kFloat64));
    kernels::fold(sums_[i], !summed_, pending_[i], pending_weight_,
                  next ? (*next)[i].second : torch::Tensor(), w);
  }
  summed_ = true;
  pending_.clear();
}

void FedAvg::on_add(const ModelUpdate& update) {
  const NamedTensors& g = global();
  const bool delta = update.kind == UpdateKind::kDelta;
  for (std::size_t i = 0; i < g.size(); ++i) {
    const torch::Tensor& x = update.tensors[i].second;
    if (!is_counter(x)) continue;
    torch::Tensor value = kernels::absolute(x, delta ? g[i].second : torch::Tensor());
    counters_[i] = counters_[i].defined() ? torch::maximum(counters_[i], value) : value.clone();
  }
  const auto weight = static_cast<double>(update.samples);
  if (pending_.empty()) {
    pending_.resize(g.size());
    for (std::size_t i = 0; i < g.size(); ++i)
      if (!is_counter(update.tensors[i].second)) pending_[i] = update.tensors[i].second;
    pending_weight_ = weight;
  } else {
    fold_pending(&update.tensors, weight);
  }
  if (delta) delta_samples_ += update.samples;
  total_samples_ += update.samples;
}

torch::Tensor FedAvg::combine(std::size_t i, torch::Tensor& sum, double scale) {
  return kernels::scaled(sum, scale, global()[i].second.scalar_type());
}

NamedTensors FedAvg::on_finish() {
  if (!pending_.empty()) fold_pending(nullptr, 0.0);
  const double scale = 1.0 / static_cast<double>(total_samples_);
  const NamedTensors& g = global();
  NamedTensors out;
  out.reserve(g.size());
  for (std::size_t i = 0; i < g.size(); ++i) {
    const auto& [name, like] = g[i];
    if (is_counter(like)) {
      out.emplace_back(name, counters_[i].to(like.scalar_type()));
      continue;
    }
    // Delta updates sent n_i * delta_i; their n_i * global completes them here, in one pass.
    if (delta_samples_ > 0)
      kernels::fold(sums_[i], false, like, static_cast<double>(delta_samples_));
    out.emplace_back(name, combine(i, sums_[i], scale));
    sums_[i] = torch::Tensor();  // released tensor by tensor: the peak stays at the sum's size
  }
  return out;
}

void FedAvg::on_clear() {
  sums_.clear();
  counters_.clear();
  pending_.clear();
  summed_ = false;
  pending_weight_ = 0;
  delta_samples_ = 0;
  total_samples_ = 0;
}

std::size_t FedAvg::held_bytes() const {
  std::size_t bytes = 0;
  for (const auto* list : {&sums_, &counters_, &pending_})
    for (const auto& t : *list)
      if (t.defined()) bytes += t.numel() * t.element_size();
  return bytes;
}

}  // namespace ppreid::agg
