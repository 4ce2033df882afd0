#include "aggregator/pairwise_distances.h"

#include <torch/torch.h>

#include <algorithm>

#include "aggregator/parallel.h"

namespace ppreid::agg {
namespace {

// Coordinates per block: the n x b float64 block of one thread stays within a few hundred KiB
// (L2), so the Gram tiles below read it from cache.
std::int64_t block_size(std::int64_t n) {
  return std::clamp<std::int64_t>((256 << 10) / (8 * std::max<std::int64_t>(n, 1)), 256, 8192);
}

void check_shapes(const std::vector<std::vector<FlatPart>>& parts,
                  const std::vector<std::int64_t>& numels) {
  for (const auto& update : parts) TORCH_CHECK(update.size() == numels.size());
}

// out[0..3] += (a0.c0, a0.c1, a1.c0, a1.c1) over w columns. Four lanes per product keep the
// sums independent so the compiler can vectorize them (a reduction it may not reorder itself).
inline void gram_tile(const double* a0, const double* a1, const double* c0, const double* c1,
                      std::int64_t w, double* out) {
  double s00[4] = {}, s01[4] = {}, s10[4] = {}, s11[4] = {};
  std::int64_t j = 0;
  for (; j + 4 <= w; j += 4)
    for (int l = 0; l < 4; ++l) {
      const double x0 = a0[j + l], x1 = a1[j + l], y0 = c0[j + l], y1 = c1[j + l];
      s00[l] += x0 * y0;
      s01[l] += x0 * y1;
      s10[l] += x1 * y0;
      s11[l] += x1 * y1;
    }
  for (; j < w; ++j) {
    s00[0] += a0[j] * c0[j];
    s01[0] += a0[j] * c1[j];
    s10[0] += a1[j] * c0[j];
    s11[0] += a1[j] * c1[j];
  }
  out[0] += (s00[0] + s00[1]) + (s00[2] + s00[3]);
  out[1] += (s01[0] + s01[1]) + (s01[2] + s01[3]);
  out[2] += (s10[0] + s10[1]) + (s10[2] + s10[3]);
  out[3] += (s11[0] + s11[1]) + (s11[2] + s11[3]);
}

// G += D D^T for D = n rows of w values (row stride `stride`); G is n x n row-major, and only
// its upper triangle (with the diagonal) is accumulated. An odd n is padded with a zero row.
void gram_update(const double* d, std::int64_t n, std::int64_t stride, std::int64_t w,
                 const double* zero_row, double* g) {
  auto row = [&](std::int64_t u) { return u < n ? d + u * stride : zero_row; };
  for (std::int64_t u = 0; u < n; u += 2) {
    for (std::int64_t v = u; v < n; v += 2) {
      double t[4] = {0, 0, 0, 0};
      gram_tile(row(u), row(u + 1), row(v), row(v + 1), w, t);
      g[u * n + v] += t[0];
      if (v + 1 < n) g[u * n + v + 1] += t[1];
      if (u + 1 < n) {
        if (v > u) g[(u + 1) * n + v] += t[2];
        if (v + 1 < n) g[(u + 1) * n + v + 1] += t[3];
      }
    }
  }
}

// One thread's share: coordinates [first, last) of the concatenation of all tensors, in blocks
// of b: each block is copied (as float64, delta updates plus their base) and centred on its
// per-coordinate mean, then folded into the thread's own Gram matrix.
void gram_of_range(const std::vector<std::vector<FlatPart>>& parts,
                   const std::vector<std::int64_t>& numels, std::int64_t first, std::int64_t last,
                   double* g) {
  const auto n = static_cast<std::int64_t>(parts.size());
  const std::int64_t b = block_size(n);
  std::vector<double> block(static_cast<std::size_t>(n * b)), mean(static_cast<std::size_t>(b));
  std::vector<double> zero_row(static_cast<std::size_t>(b), 0.0);
  double* d = block.data();
  // Find the tensor holding coordinate `first`.
  std::size_t tensor = 0;
  std::int64_t offset = first;
  while (tensor < numels.size() && offset >= numels[tensor]) offset -= numels[tensor++];
  for (std::int64_t pos = first; pos < last;) {
    const std::int64_t want = std::min(b, last - pos);
    std::int64_t filled = 0;
    while (filled < want) {
      const std::int64_t take = std::min(want - filled, numels[tensor] - offset);
      for (std::int64_t u = 0; u < n; ++u) {
        const FlatPart& p = parts[u][tensor];
        double* out = d + u * b + filled;
        const float* x = p.data + offset;
        if (p.base) {
          const float* base = p.base + offset;
          for (std::int64_t j = 0; j < take; ++j)
            out[j] = static_cast<double>(x[j]) + static_cast<double>(base[j]);
        } else {
          for (std::int64_t j = 0; j < take; ++j) out[j] = static_cast<double>(x[j]);
        }
      }
      filled += take;
      offset += take;
      if (offset == numels[tensor]) ++tensor, offset = 0;
    }
    std::fill(mean.begin(), mean.begin() + filled, 0.0);
    for (std::int64_t u = 0; u < n; ++u)
      for (std::int64_t j = 0; j < filled; ++j) mean[j] += d[u * b + j];
    const double inv = 1.0 / static_cast<double>(n);
    for (std::int64_t j = 0; j < filled; ++j) mean[j] *= inv;
    for (std::int64_t u = 0; u < n; ++u)
      for (std::int64_t j = 0; j < filled; ++j) d[u * b + j] -= mean[j];
    gram_update(d, n, b, filled, zero_row.data(), g);
    pos += filled;
  }
}

}  // namespace

at::Tensor pairwise_squared_distances(const std::vector<std::vector<FlatPart>>& parts,
                                      const std::vector<std::int64_t>& numels) {
  check_shapes(parts, numels);
  const auto n = static_cast<std::int64_t>(parts.size());
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  std::int64_t total = 0;
  for (auto numel : numels) total += numel;
  // One Gram matrix per thread (threads take contiguous coordinate ranges), summed at the end.
  const int threads = std::max(1, at::get_num_threads());
  std::vector<std::vector<double>> partial(static_cast<std::size_t>(threads),
                                           std::vector<double>(static_cast<std::size_t>(n * n)));
  if (n > 0)
    parallel_parts(total, 1 << 16, [&](std::int64_t first, std::int64_t last, int part) {
      gram_of_range(parts, numels, first, last, partial[part].data());
    });
  torch::Tensor gram = torch::zeros({n, n}, f64);
  double* g = gram.data_ptr<double>();
  for (const auto& p : partial)
    for (std::int64_t u = 0; u < n; ++u)
      for (std::int64_t v = u; v < n; ++v) g[u * n + v] += p[u * n + v];
  // d_uv = G_uu + G_vv - 2 G_uv, clamped at 0 (rounding can leave -1e-16 for equal updates).
  torch::Tensor dist = torch::zeros({n, n}, f64);
  double* out = dist.data_ptr<double>();
  for (std::int64_t u = 0; u < n; ++u)
    for (std::int64_t v = u + 1; v < n; ++v)
      out[u * n + v] = out[v * n + u] =
          std::max(0.0, g[u * n + u] + g[v * n + v] - 2.0 * g[u * n + v]);
  return dist;
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
