#include "aggregator/fedavg.h"

#include "aggregator/tensor_kernels.h"
#include "core/util/error.h"

namespace ppreid::agg {

FedAvg::FedAvg(StrategyConfig config) : Strategy(config) {}

void FedAvg::require_round(const char* what) const {
  if (!in_round_)
    throw Error(std::string(to_string(kind())) + ": " + what + " outside a round; call " +
                "begin_round first");
}

void FedAvg::begin_round(const NamedTensors& global) {
  if (global.empty()) throw Error(std::string(to_string(kind())) + ": empty global model");
  abandon();
  global_ = global;
  sums_.resize(global_.size());
  counters_.resize(global_.size());
  in_round_ = true;
}

void FedAvg::fold_pending(const NamedTensors* next, double w) {
  for (std::size_t i = 0; i < global_.size(); ++i) {
    if (!pending_[i].defined()) continue;  // a counter
    if (!summed_)
      sums_[i] = torch::empty(global_[i].second.sizes(),
                              global_[i].second.options().dtype(torch::kFloat64));
    kernels::fold(sums_[i], !summed_, pending_[i], pending_weight_,
                  next ? (*next)[i].second : torch::Tensor(), w);
  }
  summed_ = true;
  pending_.clear();
}

void FedAvg::add(const ModelUpdate& update) {
  require_round("add");
  require_aligned(global_, update, to_string(kind()));
  if (update.samples < 1)
    throw Error(std::string(to_string(kind())) + ": update of site '" + update.site +
                "' has no samples");
  const bool delta = update.kind == UpdateKind::kDelta;
  for (std::size_t i = 0; i < global_.size(); ++i) {
    const torch::Tensor& x = update.tensors[i].second;
    if (!is_counter(x)) continue;
    torch::Tensor value = kernels::absolute(x, delta ? global_[i].second : torch::Tensor());
    counters_[i] = counters_[i].defined() ? torch::maximum(counters_[i], value) : value.clone();
  }
  const auto weight = static_cast<double>(update.samples);
  if (pending_.empty()) {
    pending_.resize(global_.size());
    for (std::size_t i = 0; i < global_.size(); ++i)
      if (!is_counter(update.tensors[i].second)) pending_[i] = update.tensors[i].second;
    pending_weight_ = weight;
  } else {
    fold_pending(&update.tensors, weight);
  }
  if (delta) delta_samples_ += update.samples;
  total_samples_ += update.samples;
  ++count_;
}

torch::Tensor FedAvg::combine(std::size_t i, torch::Tensor& sum, double scale) {
  return kernels::scaled(sum, scale, global_[i].second.scalar_type());
}

NamedTensors FedAvg::finish() {
  require_round("finish");
  if (count_ == 0)
    throw Error(std::string(to_string(kind())) + ": no update to aggregate in this round; " +
                "retry the round");
  if (!pending_.empty()) fold_pending(nullptr, 0.0);
  const double scale = 1.0 / static_cast<double>(total_samples_);
  NamedTensors out;
  out.reserve(global_.size());
  for (std::size_t i = 0; i < global_.size(); ++i) {
    const auto& [name, g] = global_[i];
    if (is_counter(g)) {
      out.emplace_back(name, counters_[i].to(g.scalar_type()));
      continue;
    }
    // Delta updates sent n_i * delta_i; their n_i * global completes them here, in one pass.
    if (delta_samples_ > 0)
      kernels::fold(sums_[i], false, g, static_cast<double>(delta_samples_));
    out.emplace_back(name, combine(i, sums_[i], scale));
    sums_[i] = torch::Tensor();  // released tensor by tensor: the peak stays at the sum's size
  }
  abandon();
  return out;
}

void FedAvg::abandon() {
  sums_.clear();
  counters_.clear();
  pending_.clear();
  global_.clear();
  summed_ = false;
  pending_weight_ = 0;
  delta_samples_ = 0;
  total_samples_ = 0;
  count_ = 0;
  in_round_ = false;
}

std::size_t FedAvg::held_bytes() const {
  std::size_t bytes = 0;
  for (const auto* list : {&sums_, &counters_, &pending_})
    for (const auto& t : *list)
      if (t.defined()) bytes += t.numel() * t.element_size();
  return bytes;
}

}  // namespace ppreid::agg
