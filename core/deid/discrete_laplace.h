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
  int sample(int x, std::uint32_t u) const {
    if (identity_) return x;
    const std::uint32_t* row = thresholds_.data() + static_cast<size_t>(x) * (levels_ - 1);
    if (levels_ <= 16) {
      int out = 0;  // branch-free: the number of thresholds at or below u
      for (int j = 0; j < levels_ - 1; ++j) out += u >= row[j];
      return out;
    }
    // Guide table: the top 8 bits of u give the first candidate, a short scan finishes.
    int y = guide_[static_cast<size_t>(x) * 256 + (u >> 24)];
    while (y < levels_ - 1 && u >= row[y]) ++y;
    return y;
  }
  // The release of input level in[i] >> shift for every i, rendered as (level << shift) | half.
  // This is the whole per-value work of image DP when each pixel is its own block; the common
  // level counts get a kernel with the count fixed at compile time.
  void release_rendered(const std::uint8_t* in, const std::uint32_t* words, std::size_t n,
                        int shift, std::uint8_t half, std::uint8_t* out) const;
  // Replaces each level in place by its noisy release, one random word per value.
  void apply(std::uint8_t* levels, const std::uint32_t* words, std::size_t n) const;
  void apply(std::uint8_t* levels, std::size_t n, util::RandomSource& rng) const;

 private:
  int levels_;
  double t_;
  bool identity_ = false;  // t = infinity: no noise at all
  // thresholds_[x * (L-1) + j] = round(2^32 * P(output <= j | input x)), j = 0..L-2, strictly
  // increasing and below 2^32 so that every output keeps a non-empty slot.
  std::vector<std::uint32_t> thresholds_;
  std::vector<std::uint8_t> guide_;  // L > 16 only: [x * 256 + g] = output for u = g << 24
};

}  // namespace ppreid::deid
