#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "aggregator/parallel.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

// Sorting many short columns at once, for the coordinate-wise rules (median, trimmed mean,
// Bulyan): 16 coordinates ("lanes") of n updates are loaded into an n x 16 block and every lane
// is sorted by the same comparator network, so the work is SIMD min/max without branches.
namespace ppreid::agg::detail {

inline constexpr int kLanes = 16;  // coordinates sorted side by side: one 64-byte line per input

// Branch-free: min to `lo`, max to `hi`, lane by lane (values are finite: validated updates).
inline void compare_exchange(float* __restrict lo, float* __restrict hi) {
#if defined(__SSE2__)
  for (int l = 0; l < kLanes; l += 4) {
    __m128 a = _mm_loadu_ps(lo + l), b = _mm_loadu_ps(hi + l);
    _mm_storeu_ps(lo + l, _mm_min_ps(a, b));
    _mm_storeu_ps(hi + l, _mm_max_ps(a, b));
  }
#else
  for (int l = 0; l < kLanes; ++l) {
    float a = lo[l], b = hi[l];
    lo[l] = std::min(a, b);
    hi[l] = std::max(a, b);
  }
#endif
}

// Loads coordinates [start, start + width) of every input into `rows` (inputs.size() x kLanes;
// lanes past `width` hold 0) and sorts each lane ascending with `network`.
inline void load_sorted_lanes(const std::vector<const float*>& inputs, std::int64_t start,
                              int width, const std::vector<std::pair<int, int>>& network,
                              float* rows) {
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    float* row = rows + i * kLanes;
    std::memcpy(row, inputs[i] + start, sizeof(float) * width);
    if (width < kLanes) std::fill(row + width, row + kLanes, 0.0f);
  }
  for (const auto& [a, b] : network) compare_exchange(rows + a * kLanes, rows + b * kLanes);
}

// Runs fn(rows, start, width) for every block of kLanes coordinates of [0, numel), its lanes
// sorted by `network`, in parallel over blocks (each thread with its own rows buffer).
template <class F>
void for_each_sorted_block(const std::vector<const float*>& inputs, std::int64_t numel,
                           const std::vector<std::pair<int, int>>& network, F&& fn) {
  const std::int64_t blocks = (numel + kLanes - 1) / kLanes;
  parallel_parts(blocks, 1024, [&](std::int64_t first, std::int64_t last, int) {
    std::vector<float> rows(inputs.size() * kLanes);
    for (std::int64_t block = first; block < last; ++block) {
      const std::int64_t start = block * kLanes;
      const int width = static_cast<int>(std::min<std::int64_t>(kLanes, numel - start));
      load_sorted_lanes(inputs, start, width, network, rows.data());
      fn(static_cast<const float*>(rows.data()), start, width);
    }
  });
}

}  // namespace ppreid::agg::detail
