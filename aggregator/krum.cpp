#include "aggregator/krum.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>

#include "aggregator/coordinate_wise.h"
#include "aggregator/lane_sort.h"
#include "aggregator/pairwise_distances.h"
#include "aggregator/parallel.h"
#include "aggregator/tensor_kernels.h"
#include "core/util/error.h"

namespace ppreid::agg {
namespace detail {

std::vector<double> krum_scores(const at::Tensor& dist, const std::vector<std::size_t>& among,
                                std::int64_t f) {
  const auto n = static_cast<std::int64_t>(among.size());
  const auto k = static_cast<std::size_t>(std::max<std::int64_t>(1, n - f - 2));
  const auto stride = dist.size(1);
  const double* d = dist.data_ptr<double>();
  std::vector<double> scores(among.size(), 0.0), row;
  for (std::size_t i = 0; i < among.size(); ++i) {
    row.clear();
    for (std::size_t j = 0; j < among.size(); ++j)
      if (j != i) row.push_back(d[static_cast<std::int64_t>(among[i]) * stride + among[j]]);
    const std::size_t take = std::min(k, row.size());
    std::partial_sort(row.begin(), row.begin() + static_cast<std::ptrdiff_t>(take), row.end());
    scores[i] = std::accumulate(row.begin(), row.begin() + static_cast<std::ptrdiff_t>(take), 0.0);
  }
  return scores;
}

std::vector<std::size_t> lowest(const std::vector<double>& scores, std::size_t keep) {
  // Repeatedly the lowest remaining score, where scores within 1e-9 (relative) of it count as
  // equal and the earliest update wins: the Gram products that compute the distances round
  // (~1e-14 relative), and exact ties (equal updates, hand-made tests) must not depend on it.
  std::vector<std::size_t> out;
  std::vector<char> taken(scores.size(), 0);
  while (out.size() < std::min(keep, scores.size())) {
    double least = std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < scores.size(); ++i)
      if (!taken[i]) least = std::min(least, scores[i]);
    const double tie = least + 1e-9 * std::abs(least);
    for (std::size_t i = 0; i < scores.size(); ++i)
      if (!taken[i] && scores[i] <= tie) {
        taken[i] = 1;
        out.push_back(i);
        break;
      }
  }
  return out;
}

std::vector<std::size_t> bulyan_select(const at::Tensor& dist, std::int64_t f) {
  std::vector<std::size_t> remaining(static_cast<std::size_t>(dist.size(0)));
  std::iota(remaining.begin(), remaining.end(), std::size_t{0});
  const auto theta = static_cast<std::size_t>(std::max<std::int64_t>(0, dist.size(0) - 2 * f));
  std::vector<std::size_t> selected;
  while (selected.size() < theta) {
    const std::size_t best = lowest(krum_scores(dist, remaining, f), 1).front();
    selected.push_back(remaining[best]);
    remaining.erase(remaining.begin() + static_cast<std::ptrdiff_t>(best));
  }
  return selected;
}

void closest_to_median_kernel(const std::vector<const float*>& inputs, float* out,
                              std::int64_t numel, int beta) {
  const int n = static_cast<int>(inputs.size());
  TORCH_CHECK(n >= 1 && beta >= 1 && beta <= n);
  // The window of the beta closest values may reach either end: sort fully.
  const auto network = sorting_network(n);
  for_each_sorted_block(inputs, numel, network, [&](const float* rows, std::int64_t start, int width) {
    for (int l = 0; l < width; ++l) {
      auto at = [&](int r) { return static_cast<double>(rows[r * kLanes + l]); };
      const double median = n % 2 ? at(n / 2) : 0.5 * (at(n / 2 - 1) + at(n / 2));
      // The beta values closest to the median are a window of the sorted column: the one whose
      // farther end is nearest to the median (the lowest such window on a tie).
      int best = 0;
      double best_reach = 0;
      for (int s = 0; s + beta <= n; ++s) {
        const double reach = std::max(median - at(s), at(s + beta - 1) - median);
        if (s == 0 || reach < best_reach) best = s, best_reach = reach;
      }
      double sum = 0;
      for (int r = best; r < best + beta; ++r) sum += at(r);
      out[start + l] = static_cast<float>(sum / beta);
    }
  });
}

}  // namespace detail

Krum::Krum(StrategyConfig config) : Strategy(config) {
  if (config.kind != StrategyKind::kKrum && config.kind != StrategyKind::kMultiKrum &&
      config.kind != StrategyKind::kBulyan)
    throw Error("Krum is krum, multi_krum or bulyan, not " + std::string(to_string(config.kind)));
}

void Krum::on_add(const ModelUpdate& update) {
  ModelUpdate kept;
  kept.site = update.site;
  kept.samples = update.samples;
  kept.kind = update.kind;
  kept.tensors = update.tensors;  // references, not copies
  kept_.push_back(std::move(kept));
}

at::Tensor Krum::counter_max(std::size_t i, const std::vector<std::size_t>& chosen) const {
  const torch::Tensor& g = global()[i].second;
  torch::Tensor result;
  for (std::size_t u : chosen) {
    const ModelUpdate& up = kept_[u];
    torch::Tensor value =
        kernels::absolute(up.tensors[i].second, up.kind == UpdateKind::kDelta ? g : torch::Tensor());
    result = result.defined() ? torch::maximum(result, value) : value.clone();
  }
  return result.to(g.scalar_type());
}

NamedTensors Krum::combine(const std::vector<std::size_t>& chosen,
                           const std::function<at::Tensor(std::size_t, const at::Tensor&)>& value) const {
  const NamedTensors& g = global();
  NamedTensors out;
  out.reserve(g.size());
  for (std::size_t i = 0; i < g.size(); ++i) {
    const auto& [name, like] = g[i];
    out.emplace_back(name, is_counter(like) ? counter_max(i, chosen) : value(i, like));
  }
  return out;
}

NamedTensors Krum::average(const std::vector<std::size_t>& chosen, bool weighted) const {
  double total = 0, delta_total = 0;
  for (std::size_t u : chosen) {
    const double w = weighted ? static_cast<double>(kept_[u].samples) : 1.0;
    total += w;
    if (kept_[u].kind == UpdateKind::kDelta) delta_total += w;
  }
  return combine(chosen, [&](std::size_t i, const at::Tensor& like) {
    torch::Tensor sum = torch::empty(like.sizes(), like.options().dtype(torch::kFloat64));
    bool first = true;
    for (std::size_t u : chosen) {
      const double w = weighted ? static_cast<double>(kept_[u].samples) : 1.0;
      kernels::fold(sum, first, kept_[u].tensors[i].second, w);
      first = false;
    }
    if (delta_total > 0) kernels::fold(sum, false, like, delta_total);
    return kernels::scaled(sum, 1.0 / total, like.scalar_type());
  });
}

NamedTensors Krum::bulyan(const std::vector<std::size_t>& chosen) const {
  const int beta = static_cast<int>(chosen.size()) - 2 * static_cast<int>(config_.f);
  return combine(chosen, [&](std::size_t i, const at::Tensor& like) {
    std::vector<torch::Tensor> values;  // absolute float32 weights of the selected updates
    std::vector<const float*> inputs;
    for (std::size_t u : chosen) {
      const ModelUpdate& up = kept_[u];
      torch::Tensor v =
          kernels::absolute(up.tensors[i].second, up.kind == UpdateKind::kDelta ? like : torch::Tensor())
              .to(torch::kFloat32)
              .contiguous();
      inputs.push_back(v.data_ptr<float>());
      values.push_back(std::move(v));
    }
    torch::Tensor result = torch::empty(like.sizes(), like.options().dtype(torch::kFloat32));
    detail::closest_to_median_kernel(inputs, result.data_ptr<float>(), like.numel(), beta);
    return result.to(like.scalar_type());
  });
}

NamedTensors Krum::on_finish() {
  const NamedTensors& g = global();
  // Flat float32 views of every floating-point tensor; other floating dtypes are converted.
  std::vector<std::vector<FlatPart>> parts(kept_.size());
  std::vector<std::int64_t> numels;
  std::vector<torch::Tensor> converted;
  auto as_f32 = [&](const torch::Tensor& t) -> const float* {
    if (t.scalar_type() == torch::kFloat32 && t.is_contiguous()) return t.data_ptr<float>();
    converted.push_back(t.to(torch::kFloat32).contiguous());
    return converted.back().data_ptr<float>();
  };
  for (std::size_t i = 0; i < g.size(); ++i) {
    if (is_counter(g[i].second)) continue;
    numels.push_back(g[i].second.numel());
    const float* base = nullptr;
    for (std::size_t u = 0; u < kept_.size(); ++u) {
      if (kept_[u].kind == UpdateKind::kDelta && !base) base = as_f32(g[i].second);
      parts[u].push_back({as_f32(kept_[u].tensors[i].second),
                          kept_[u].kind == UpdateKind::kDelta ? base : nullptr});
    }
  }
  const torch::Tensor dist = pairwise_squared_distances(parts, numels);
  converted.clear();

  std::vector<std::size_t> all(kept_.size());
  std::iota(all.begin(), all.end(), std::size_t{0});
  const std::vector<double> scores = detail::krum_scores(dist, all, config_.f);
  std::vector<std::size_t> chosen;
  NamedTensors out;
  switch (kind()) {
    case StrategyKind::kKrum:
      chosen = detail::lowest(scores, 1);
      out = average(chosen, false);
      break;
    case StrategyKind::kMultiKrum: {
      const std::size_t m = config_.m > 0 ? static_cast<std::size_t>(config_.m)
                                          : kept_.size() - static_cast<std::size_t>(config_.f);
      chosen = detail::lowest(scores, m);
      out = average(chosen, config_.weighted);
      break;
    }
    default:
      chosen = detail::bulyan_select(dist, config_.f);
      out = bulyan(chosen);
      break;
  }
  report_ = {{"selected", nlohmann::json::array()}, {"scores", nlohmann::json::object()}};
  for (std::size_t u : chosen) report_["selected"].push_back(kept_[u].site);
  for (std::size_t u = 0; u < kept_.size(); ++u) report_["scores"][kept_[u].site] = scores[u];
  return out;
}

void Krum::on_clear() { kept_.clear(); }

std::size_t Krum::held_bytes() const {
  std::size_t bytes = 0;
  for (const auto& update : kept_) bytes += byte_size(update.tensors);
  return bytes;
}

}  // namespace ppreid::agg
