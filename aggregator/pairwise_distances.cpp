#include "aggregator/pairwise_distances.h"

#include <torch/torch.h>

#include <algorithm>

#include "aggregator/parallel.h"

namespace ppreid::agg {
namespace {

// Coordinates per block: the n x b float64 block stays within a few hundred KiB (L2), and b is
// large enough that the matrix product, not the loop around it, takes the time.
std::int64_t block_size(std::int64_t n) {
  return std::clamp<std::int64_t>((256 << 10) / (8 * std::max<std::int64_t>(n, 1)), 512, 8192);
}

void check_shapes(const std::vector<std::vector<FlatPart>>& parts,
                  const std::vector<std::int64_t>& numels) {
  for (const auto& update : parts) TORCH_CHECK(update.size() == numels.size());
}

}  // namespace

at::Tensor pairwise_squared_distances(const std::vector<std::vector<FlatPart>>& parts,
                                      const std::vector<std::int64_t>& numels) {
  check_shapes(parts, numels);
  const auto n = static_cast<std::int64_t>(parts.size());
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  torch::Tensor gram = torch::zeros({n, n}, f64);
  if (n == 0) return gram;
  const std::int64_t b = block_size(n);
  torch::Tensor block = torch::empty({n, b}, f64);
  double* d = block.data_ptr<double>();
  std::vector<double> mean(static_cast<std::size_t>(b));

  // A cursor over the concatenation of all tensors fills each block; pieces of several tensors
  // may share one block.
  std::size_t tensor = 0;
  std::int64_t offset = 0;
  auto fill_block = [&]() -> std::int64_t {
    std::int64_t filled = 0;
    while (filled < b && tensor < numels.size()) {
      const std::int64_t take = std::min(b - filled, numels[tensor] - offset);
      const std::int64_t col = filled;
      parallel_parts(n, 4, [&](std::int64_t first, std::int64_t last, int) {
        for (std::int64_t u = first; u < last; ++u) {
          const FlatPart& p = parts[u][tensor];
          double* row = d + u * b + col;
          const float* x = p.data + offset;
          if (p.base) {
            const float* g = p.base + offset;
            for (std::int64_t j = 0; j < take; ++j)
              row[j] = static_cast<double>(x[j]) + static_cast<double>(g[j]);
          } else {
            for (std::int64_t j = 0; j < take; ++j) row[j] = static_cast<double>(x[j]);
          }
        }
      });
      filled += take;
      offset += take;
      if (offset == numels[tensor]) ++tensor, offset = 0;
    }
    return filled;
  };

  for (std::int64_t filled; (filled = fill_block()) > 0;) {
    std::fill(mean.begin(), mean.begin() + filled, 0.0);
    for (std::int64_t u = 0; u < n; ++u)
      for (std::int64_t j = 0; j < filled; ++j) mean[j] += d[u * b + j];
    const double inv = 1.0 / static_cast<double>(n);
    for (std::int64_t j = 0; j < filled; ++j) mean[j] *= inv;
    for (std::int64_t u = 0; u < n; ++u)
      for (std::int64_t j = 0; j < filled; ++j) d[u * b + j] -= mean[j];
    torch::Tensor used = filled == b ? block : block.narrow(1, 0, filled);
    gram.addmm_(used, used.t());
  }
  // d_uv = G_uu + G_vv - 2 G_uv, clamped at 0 (rounding can leave -1e-16 for equal updates).
  torch::Tensor diag = gram.diagonal();
  torch::Tensor dist = (diag.unsqueeze(0) + diag.unsqueeze(1) - 2.0 * gram).clamp_min_(0.0);
  dist.fill_diagonal_(0.0);
  return (dist + dist.t()) * 0.5;  // exactly symmetric
}

namespace detail {

at::Tensor pairwise_squared_distances_by_pairs(const std::vector<std::vector<FlatPart>>& parts,
                                               const std::vector<std::int64_t>& numels) {
  check_shapes(parts, numels);
  const auto n = static_cast<std::int64_t>(parts.size());
  torch::Tensor dist = torch::zeros({n, n}, torch::TensorOptions().dtype(torch::kFloat64));
  auto* out = dist.data_ptr<double>();
  for (std::int64_t u = 0; u < n; ++u) {
    for (std::int64_t v = u + 1; v < n; ++v) {
      double sum = 0;
      for (std::size_t t = 0; t < numels.size(); ++t) {
        const FlatPart &a = parts[u][t], &c = parts[v][t];
        for (std::int64_t j = 0; j < numels[t]; ++j) {
          const double x = static_cast<double>(a.data[j]) + (a.base ? a.base[j] : 0.0);
          const double y = static_cast<double>(c.data[j]) + (c.base ? c.base[j] : 0.0);
          sum += (x - y) * (x - y);
        }
      }
      out[u * n + v] = out[v * n + u] = sum;
    }
  }
  return dist;
}

}  // namespace detail
}  // namespace ppreid::agg
