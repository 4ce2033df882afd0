#include "aggregator/coordinate_wise.h"

#include <algorithm>
#include <cmath>

#include "aggregator/lane_sort.h"
#include "aggregator/parallel.h"
#include "aggregator/tensor_kernels.h"
#include "core/util/error.h"

namespace ppreid::agg {
namespace detail {

std::vector<std::pair<int, int>> sorting_network(int n) {
  // Batcher's odd-even merge sort on the next power of two; comparators that touch a padding
  // position are dropped (padding would hold +inf, which such a comparator never moves).
  std::vector<std::pair<int, int>> pairs;
  int size = 1;
  while (size < n) size <<= 1;
  for (int p = 1; p < size; p <<= 1) {
    for (int k = p; k >= 1; k >>= 1) {
      for (int j = k % p; j + k < size; j += 2 * k) {
        for (int i = 0; i < std::min(k, size - j - k); ++i) {
          int a = i + j, b = i + j + k;
          if (a / (2 * p) == b / (2 * p) && b < n) pairs.emplace_back(a, b);
        }
      }
    }
  }
  return pairs;
}

std::vector<std::pair<int, int>> prune_network(const std::vector<std::pair<int, int>>& network,
                                               int lo, int hi) {
  int n = hi;
  for (const auto& [a, b] : network) n = std::max(n, b + 1);
  std::vector<char> needed(static_cast<std::size_t>(n), 0);
  for (int r = lo; r < hi; ++r) needed[r] = 1;
  std::vector<std::pair<int, int>> kept;
  for (auto it = network.rbegin(); it != network.rend(); ++it) {
    if (!needed[it->first] && !needed[it->second]) continue;
    needed[it->first] = needed[it->second] = 1;
    kept.push_back(*it);
  }
  std::reverse(kept.begin(), kept.end());
  return kept;
}

void trimmed_mean_kernel(const std::vector<const float*>& inputs, float* out, std::int64_t numel,
                         int k) {
  const int n = static_cast<int>(inputs.size());
  TORCH_CHECK(n >= 1 && k >= 0 && 2 * k < n);
  const auto network = prune_network(sorting_network(n), k, n - k);
  const double scale = 1.0 / (n - 2 * k);
  for_each_sorted_block(inputs, numel, network, [&](const float* rows, std::int64_t start, int width) {
    double sum[kLanes] = {};
    for (int r = k; r < n - k; ++r) {
      const float* row = rows + r * kLanes;
      for (int l = 0; l < kLanes; ++l) sum[l] += row[l];
    }
    for (int l = 0; l < width; ++l) out[start + l] = static_cast<float>(sum[l] * scale);
  });
}

}  // namespace detail

CoordinateWise::CoordinateWise(StrategyConfig config) : Strategy(config) {
  if (config.kind != StrategyKind::kMedian && config.kind != StrategyKind::kTrimmedMean)
    throw Error("CoordinateWise is median or trimmed_mean, not " +
                std::string(to_string(config.kind)));
}

std::size_t CoordinateWise::trimmed_per_side(std::size_t n) const {
  if (n == 0) return 0;
  if (kind() == StrategyKind::kMedian) return (n - 1) / 2;
  auto k = static_cast<std::size_t>(std::floor(config_.trim_fraction * static_cast<double>(n)));
  return std::min(k, (n - 1) / 2);
}

void CoordinateWise::on_add(const ModelUpdate& update) {
  const NamedTensors& g = global();
  std::vector<torch::Tensor> values;
  values.reserve(g.size());
  for (std::size_t i = 0; i < g.size(); ++i) {
    const torch::Tensor base = update.kind == UpdateKind::kDelta ? g[i].second : torch::Tensor();
    values.push_back(kernels::absolute(update.tensors[i].second, base).contiguous());
  }
  kept_.push_back(std::move(values));
}

NamedTensors CoordinateWise::on_finish() {
  const NamedTensors& g = global();
  const std::size_t n = kept_.size();
  const int k = static_cast<int>(trimmed_per_side(n));
  NamedTensors out;
  out.reserve(g.size());
  for (std::size_t i = 0; i < g.size(); ++i) {
    const torch::Tensor& like = g[i].second;
    torch::Tensor result;
    if (is_counter(like)) {
      result = kept_[0][i].clone();
      for (std::size_t u = 1; u < n; ++u) result = torch::maximum(result, kept_[u][i]);
    } else if (like.scalar_type() == torch::kFloat32) {
      result = torch::empty(like.sizes(), like.options());
      std::vector<const float*> inputs(n);
      for (std::size_t u = 0; u < n; ++u) inputs[u] = kept_[u][i].data_ptr<float>();
      detail::trimmed_mean_kernel(inputs, result.data_ptr<float>(), like.numel(), k);
    } else {  // other floating dtypes: sort a stacked float64 copy
      std::vector<torch::Tensor> column(n);
      for (std::size_t u = 0; u < n; ++u) column[u] = kept_[u][i].to(torch::kFloat64);
      torch::Tensor sorted = std::get<0>(torch::stack(column).sort(0));
      result = sorted.narrow(0, k, static_cast<int64_t>(n) - 2 * k).mean(0).to(like.scalar_type());
    }
    for (auto& update : kept_) update[i] = torch::Tensor();  // release as we go
    out.emplace_back(g[i].first, std::move(result));
  }
  return out;
}

void CoordinateWise::on_clear() { kept_.clear(); }

std::size_t CoordinateWise::held_bytes() const {
  std::size_t bytes = 0;
  for (const auto& update : kept_)
    for (const auto& t : update)
      if (t.defined()) bytes += t.numel() * t.element_size();
  return bytes;
}

}  // namespace ppreid::agg
