#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

namespace ppreid::agg {

// Runs fn(begin, end, part) over [0, n) split into at most at::get_num_threads() contiguous
// ranges of at least `min_per_part` items, on std::threads (the calling thread takes part 0).
// Returns the number of parts used. LibTorch's at::parallel_for cannot be used here: with its
// OpenMP backend it is a `#pragma omp parallel` in a header, which runs serially in code not
// compiled with -fopenmp (this project is not; its precompiled header is shared by all targets).
// `fn` must not throw.
template <class F>
int parallel_parts(std::int64_t n, std::int64_t min_per_part, F&& fn) {
  const std::int64_t by_size = std::max<std::int64_t>(1, n / std::max<std::int64_t>(1, min_per_part));
  const int parts = static_cast<int>(std::min<std::int64_t>(at::get_num_threads(), by_size));
  if (parts <= 1) {
    fn(std::int64_t{0}, n, 0);
    return 1;
  }
  std::vector<std::thread> workers;
  workers.reserve(parts - 1);
  auto bounds = [&](int p) { return n * p / parts; };
  for (int p = 1; p < parts; ++p)
    workers.emplace_back([&fn, &bounds, p] { fn(bounds(p), bounds(p + 1), p); });
  fn(std::int64_t{0}, bounds(1), 0);
  for (auto& w : workers) w.join();
  return parts;
}

}  // namespace ppreid::agg
