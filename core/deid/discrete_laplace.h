#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/util/random_source.h"

namespace ppreid::deid {

// Discrete Laplace (two-sided geometric) noise with P(k) proportional to exp(-t |k|), where
// t = epsilon / Delta. Integer-valued by construction, so the floating-point attacks on
// continuous Laplace samples (Mironov 2012) do not apply.
double discrete_laplace_pmf(std::int64_t k, double t);

// Reference sampler: the difference of two geometric variables, drawn by inverting their CDFs.
// Used by tests and by the straightforward benchmark baseline; the mechanism itself uses
// ClampedLaplaceTable, which needs one 32-bit draw per value.
std::int64_t sample_discrete_laplace(double t, util::RandomSource& rng);

// The released value of the image-DP mechanism for one level x in [0, L-1] is
// clamp(x + K, 0, L-1) with K ~ DLap(t). Only that clamped value is ever released, so sampling
// its distribution directly is the same mechanism. The table holds, for every input level, the
// CDF over the L outputs scaled to 2^32; a uniform 32-bit word picks the output.
class ClampedLaplaceTable {
 public:
  ClampedLaplaceTable(int levels, double t);

  int levels() const { return levels_; }
  // Exact probability (in double) that input level x is released as y.
  double probability(int x, int y) const;
  int sample(int x, std::uint32_t u) const;
  // Replaces each level in place by its noisy release, drawing the random words from `rng`.
  void apply(std::uint8_t* levels, std::size_t n, util::RandomSource& rng) const;

 private:
  int levels_;
  double t_;
  // thresholds_[x * (L-1) + j]: 2^32 * P(output <= j | input x), for j = 0..L-2.
  std::vector<std::uint64_t> thresholds_;
};

}  // namespace ppreid::deid
