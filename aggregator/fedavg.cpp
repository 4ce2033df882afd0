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
  global_ = global;
  sums_.clear();
  total_samples_ = 0;
  count_ = 0;
  in_round_ = true;
}

void FedAvg::add(const ModelUpdate& update) {
  require_round("add");
  require_aligned(global_, update, to_string(kind()));
  if (update.samples < 1)
    throw Error(std::string(to_string(kind())) + ": update of site '" + update.site +
                "' has no samples");
  const bool first = count_ == 0;
  if (first) sums_.resize(global_.size());
  const auto weight = static_cast<double>(update.samples);
  for (std::size_t i = 0; i < global_.size(); ++i) {
    const torch::Tensor& x = update.tensors[i].second;
    const torch::Tensor base = update.kind == UpdateKind::kDelta ? global_[i].second
                                                                 : torch::Tensor();
    if (is_counter(x)) {
      torch::Tensor value = kernels::absolute(x, base);
      sums_[i] = first ? value.clone() : torch::maximum(sums_[i], value);
      continue;
    }
    if (first) sums_[i] = torch::zeros(x.sizes(), x.options().dtype(torch::kFloat64));
    kernels::accumulate(sums_[i], x, weight, base);
  }
  total_samples_ += update.samples;
  ++count_;
}

torch::Tensor FedAvg::combine(std::size_t i, torch::Tensor mean) {
  return mean.to(global_[i].second.scalar_type());
}

NamedTensors FedAvg::finish() {
  require_round("finish");
  if (count_ == 0)
    throw Error(std::string(to_string(kind())) + ": no update to aggregate in this round; " +
                "retry the round");
  const auto total = static_cast<double>(total_samples_);
  NamedTensors out;
  out.reserve(global_.size());
  for (std::size_t i = 0; i < global_.size(); ++i) {
    torch::Tensor mean = std::move(sums_[i]);  // released tensor by tensor: peak stays ~2 models
    if (!is_counter(mean)) mean.div_(total);
    out.emplace_back(global_[i].first, combine(i, std::move(mean)));
  }
  abandon();
  return out;
}

void FedAvg::abandon() {
  sums_.clear();
  global_.clear();
  total_samples_ = 0;
  count_ = 0;
  in_round_ = false;
}

std::size_t FedAvg::held_bytes() const {
  std::size_t bytes = 0;
  for (const auto& t : sums_)
    if (t.defined()) bytes += t.numel() * t.element_size();
  return bytes;
}

}  // namespace ppreid::agg
