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
// ClampedLaplaceTable.
std::int64_t sample_discrete_laplace(double t, util::RandomSource& rng);

// The certifier. `widths` holds, for every input level x and output y, the integer slot width
// w[x * levels + y]; the sampler releases y for input x with probability w / 2^64 exactly. Returns
// the realized privacy loss per unit of level distance,
//   max over x != x', y of |ln(w[x][y] / w[x'][y])| / |x - x'|,
// rounded up, so that releasing levels that differ by d in total costs at most d times it.
// Adjacent levels suffice: the ratio over a distance d is a product of d adjacent ratios, so its
// per-unit value is their mean and never exceeds the largest. +infinity when an output is possible
// for one input and impossible for another. Throws when a row does not sum to 2^64.
double realized_loss_per_level(int levels, const std::vector<std::uint64_t>& widths);

// The released value of the image-DP mechanism for one level x in [0, L-1] is
// clamp(x + K, 0, L-1) with K ~ DLap(t). Only that clamped value is released, so sampling its
// distribution directly is the same mechanism.
//
// What is sampled is an integer table, not the real-valued distribution, and the guarantee is
// certified on that table: each probability becomes a slot width out of 2^64, drawn with an alias
// table (one 32-bit word per value; a second word only in the ~2^-24 of draws that land on a
// slot's boundary). Rounding to integers can push a ratio above e^t, so the table is built for a
// loss slightly below t and mixed with a uniform component of weight ~1e-9 before rounding (the
// mix only moves ratios towards 1), then certified with realized_loss_per_level(); the
// constructor never returns a table whose certificate exceeds t.
class ClampedLaplaceTable {
 public:
  ClampedLaplaceTable(int levels, double t);
  // A table that samples exactly the given widths (rows summing to 2^64), certified as built.
  // For audits and tests of the certifier; the mechanism uses the constructor above.
  static ClampedLaplaceTable from_widths(int levels, std::vector<std::uint64_t> widths);

  int levels() const { return levels_; }
  // The exact (real-valued) probability that input level x is released as y under the requested
  // t (for a from_widths() table: under its certified loss).
  double probability(int x, int y) const;
  // What the sampler actually does: P(y | x) = slot_width(x, y) / 2^64 (identity tables: 0 or 1).
  std::uint64_t slot_width(int x, int y) const;
  double realized_probability(int x, int y) const;
  const std::vector<std::uint64_t>& widths() const { return widths_; }
  // realized_loss_per_level() of the sampled table: 0 <= certified <= t (inf for t = inf).
  double certified_loss_per_level() const { return certified_; }

  // One release of level x.
  int sample(int x, util::RandomSource& rng) const;
  // The release of input level in[i] >> shift for every i, rendered as (level << shift) | half,
  // with words[i] as the value's random word and `ties` for the rare second word. This is the
  // whole per-value work of image DP when each pixel is its own block. `in` and `out` must not
  // overlap.
  void release_rendered(const std::uint8_t* in, const std::uint32_t* words, std::size_t n,
                        int shift, std::uint8_t half, std::uint8_t* out,
                        util::RandomSource& ties) const;
  // Replaces each level in place by its noisy release, one random word per value.
  void apply(std::uint8_t* levels, const std::uint32_t* words, std::size_t n,
             util::RandomSource& ties) const;

 private:
  ClampedLaplaceTable() = default;
  void build_alias();

  // Alias cell of (input x, column j): column j of the 2^bits equal columns keeps output j for
  // the first `keep` of its 2^(64-bits) units and gives the rest to `alias`. keep_hi is keep's
  // top part, compared with the word's low 32-bits bits; keep_lo settles equality.
  struct Cell {
    std::uint32_t keep_hi;
    std::uint32_t alias;
  };
  int resolve_tie(std::size_t cell, int column, util::RandomSource& ties) const;

  int levels_ = 0;
  int bits_ = 0;  // levels = 2^bits
  double t_ = 0;
  double certified_ = 0;
  bool identity_ = false;  // t = infinity: no noise at all
  std::vector<std::uint64_t> widths_;  // [x * L + y], each row summing to 2^64
  std::vector<Cell> cells_;             // [x * L + j]
  std::vector<std::uint32_t> keep_lo_;  // [x * L + j]
};

}  // namespace ppreid::deid
