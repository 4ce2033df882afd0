#include "core/deid/discrete_laplace.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/util/error.h"

namespace ppreid::deid {
namespace {

// P(K >= m) for m >= 1 is q^m / (1 + q) with q = e^-t; computed in logs so that the tiny t of
// realistic sensitivities (t ~ 1e-6) keeps full precision.
double tail_at_least(std::int64_t m, double t) {
  if (m <= 0) return 1.0 - tail_at_least(1 - m, t);
  if (std::isinf(t)) return 0.0;
  double log_q = -t;
  return std::exp(static_cast<double>(m) * log_q - std::log1p(std::exp(log_q)));
}

}  // namespace

double discrete_laplace_pmf(std::int64_t k, double t) {
  if (std::isinf(t)) return k == 0 ? 1.0 : 0.0;
  // (1 - q) / (1 + q) * q^|k|, with 1 - q = -expm1(-t).
  double q = std::exp(-t);
  return -std::expm1(-t) / (1.0 + q) * std::exp(-t * static_cast<double>(std::llabs(k)));
}

std::int64_t sample_discrete_laplace(double t, util::RandomSource& rng) {
  if (std::isinf(t)) return 0;
  // Geometric G >= 0 with P(G >= g) = q^g: G = floor(log(u) / log(q)), u in (0, 1].
  auto geometric = [&] {
    double g = std::floor(std::log(rng.uniform_open0()) / -t);
    return static_cast<std::int64_t>(std::min(g, 9.0e18));
  };
  return geometric() - geometric();
}

namespace {

constexpr double kTwo64 = 18446744073709551616.0;  // 2^64
using u128 = unsigned __int128;
constexpr u128 kRowTotal = static_cast<u128>(1) << 64;

int log2_levels(int levels) {
  if (levels < 2 || levels > 256 || (levels & (levels - 1)) != 0)
    throw Error("image DP needs a power of two between 2 and 256 levels per channel (got " +
                std::to_string(levels) + ")");
  int bits = 0;
  while ((1 << bits) < levels) ++bits;
  return bits;
}

// P(clamp(x + K, 0, L-1) = y) for K ~ DLap(t).
double clamped_probability(int levels, double t, int x, int y) {
  const int last = levels - 1;
  if (y < 0 || y > last) return 0.0;
  if (y == 0) return tail_at_least(x, t);            // P(x + K <= 0) = P(K >= x)
  if (y == last) return tail_at_least(last - x, t);  // P(x + K >= L-1)
  return discrete_laplace_pmf(y - x, t);
}

// Integer widths for the clamped mechanism at loss t_build mixed with weight `g` per output of a
// uniform distribution. The largest entry of each row takes the rounding remainder, so every row
// sums to exactly 2^64 whatever the double rounding did.
std::vector<std::uint64_t> mixed_widths(int levels, double t_build, double g) {
  const int L = levels;
  std::vector<std::uint64_t> w(static_cast<size_t>(L) * L);
  std::vector<double> p(L);
  for (int x = 0; x < L; ++x) {
    int largest = 0;
    for (int y = 0; y < L; ++y) {
      p[y] = g >= 1.0 / L ? 1.0 / L
                          : (1.0 - g * L) * clamped_probability(L, t_build, x, y) + g;
      if (p[y] > p[largest]) largest = y;
    }
    u128 rest = 0;
    for (int y = 0; y < L; ++y) {
      if (y == largest) continue;
      const auto v = static_cast<std::uint64_t>(std::nearbyint(std::min(p[y], 0.5) * kTwo64));
      w[static_cast<size_t>(x) * L + y] = std::max<std::uint64_t>(v, 1);
      rest += w[static_cast<size_t>(x) * L + y];
    }
    w[static_cast<size_t>(x) * L + largest] = static_cast<std::uint64_t>(kRowTotal - rest);
  }
  return w;
}

}  // namespace

double realized_loss_per_level(int levels, const std::vector<std::uint64_t>& widths) {
  const int L = levels;
  if (widths.size() != static_cast<size_t>(L) * L)
    throw Error("a sampling table for " + std::to_string(L) + " levels needs " +
                std::to_string(L * L) + " slot widths, got " + std::to_string(widths.size()));
  for (int x = 0; x < L; ++x) {
    u128 sum = 0;
    for (int y = 0; y < L; ++y) sum += widths[static_cast<size_t>(x) * L + y];
    if (sum != kRowTotal)
      throw Error("row " + std::to_string(x) + " of the sampling table does not sum to 2^64");
  }
  double worst = 0.0;
  for (int y = 0; y < L; ++y)
    for (int x = 0; x + 1 < L; ++x) {
      const std::uint64_t a = widths[static_cast<size_t>(x) * L + y];
      const std::uint64_t b = widths[static_cast<size_t>(x + 1) * L + y];
      if (a == b) continue;
      if (a == 0 || b == 0) return std::numeric_limits<double>::infinity();
      const std::uint64_t hi = std::max(a, b), lo = std::min(a, b);
      // ln(hi / lo) from the exact integer difference keeps full relative precision even when
      // the ratio is 1 + 1e-12; the factor covers the few rounding steps of this expression.
      const double loss =
          std::log1p(static_cast<double>(hi - lo) / static_cast<double>(lo)) * (1.0 + 1e-14);
      worst = std::max(worst, loss);
    }
  return worst;
}

ClampedLaplaceTable::ClampedLaplaceTable(int levels, double t) : levels_(levels), t_(t) {
  bits_ = log2_levels(levels);
  if (!(t > 0.0))
    throw Error("image DP noise scale epsilon/Delta must be positive (got " + std::to_string(t) +
                ")");
  identity_ = std::isinf(t);
  if (identity_) {
    certified_ = std::numeric_limits<double>::infinity();
    return;
  }
  const int L = levels;
  // Why these margins: every adjacent ratio of the clamped mechanism is exactly e^{+-t}, so any
  // rounding would exceed t. Building for t minus `slack` leaves room for the double arithmetic
  // (relative errors ~1e-15); the uniform weight g makes each integer ratio stay below e^t after
  // rounding to units of 2^-64: e^t w' - w = g (e^t - 1) 2^64 must exceed the L/2 units of
  // rounding a row can gather, hence g >= L (e^t + 1) / (2 (e^t - 1) 2^64), taken 4x.
  double slack = std::max(t * 1e-9, 2e-14);
  double g = 4.0 * L * (1.0 + std::exp(-t)) / (-2.0 * std::expm1(-t) * kTwo64);
  g = std::max(g, 0x1.0p-60);
  for (int attempt = 0; attempt < 12; ++attempt) {
    const double t_build = t - slack;
    widths_ = mixed_widths(L, t_build > 0 ? t_build : 0.0, t_build > 0 ? g : 1.0);
    certified_ = realized_loss_per_level(L, widths_);
    if (certified_ <= t) break;
    slack *= 16;
    g *= 16;
  }
  if (!(certified_ <= t))
    throw Error("internal: the image-DP sampling table for " + std::to_string(L) +
                " levels at epsilon/Delta = " + std::to_string(t) +
                " could not be certified; please report this");
  build_alias();
}

ClampedLaplaceTable ClampedLaplaceTable::from_widths(int levels, std::vector<std::uint64_t> widths) {
  ClampedLaplaceTable table;
  table.levels_ = levels;
  table.bits_ = log2_levels(levels);
  table.certified_ = realized_loss_per_level(levels, widths);
  table.t_ = table.certified_;
  table.widths_ = std::move(widths);
  table.build_alias();
  return table;
}

// Vose's alias method in exact integer arithmetic: each of the L columns holds 2^(64-bits) units
// and is split between its own output and one alias, so one word picks a column and a threshold
// in O(1) whatever L is. No unit moves between outputs, so output y keeps exactly w[x][y] units.
void ClampedLaplaceTable::build_alias() {
  const int L = levels_;
  const std::uint64_t column = std::uint64_t{1} << (64 - bits_);
  cells_.assign(static_cast<size_t>(L) * L, Cell{0, 0});
  keep_lo_.assign(static_cast<size_t>(L) * L, 0);
  std::vector<std::uint64_t> rest(L), keep(L);
  std::vector<int> small, large;
  for (int x = 0; x < L; ++x) {
    small.clear();
    large.clear();
    for (int y = 0; y < L; ++y) {
      rest[y] = widths_[static_cast<size_t>(x) * L + y];
      (rest[y] < column ? small : large).push_back(y);
    }
    std::vector<int> alias(L);
    while (!small.empty() && !large.empty()) {
      const int s = small.back(), l = large.back();
      small.pop_back();
      keep[s] = rest[s];
      alias[s] = l;
      rest[l] -= column - rest[s];
      if (rest[l] < column) {
        large.pop_back();
        small.push_back(l);
      }
    }
    // With exact sums every remaining output fills its column exactly.
    for (int y : large) {
      if (rest[y] != column) throw Error("internal: alias table of row " + std::to_string(x));
      keep[y] = column;
      alias[y] = y;
    }
    if (!small.empty()) throw Error("internal: alias table of row " + std::to_string(x));
    for (int j = 0; j < L; ++j) {
      const size_t idx = static_cast<size_t>(x) * L + j;
      cells_[idx] = Cell{static_cast<std::uint32_t>(keep[j] >> 32),
                         static_cast<std::uint32_t>(alias[j])};
      keep_lo_[idx] = static_cast<std::uint32_t>(keep[j]);
    }
  }
}

double ClampedLaplaceTable::probability(int x, int y) const {
  return clamped_probability(levels_, t_, x, y);
}

std::uint64_t ClampedLaplaceTable::slot_width(int x, int y) const {
  if (identity_) throw Error("an identity table (epsilon = inf) has no slots");
  return widths_.at(static_cast<size_t>(x) * levels_ + y);
}

double ClampedLaplaceTable::realized_probability(int x, int y) const {
  if (identity_) return x == y ? 1.0 : 0.0;
  return static_cast<double>(slot_width(x, y)) / kTwo64;
}

int ClampedLaplaceTable::resolve_tie(std::size_t cell, int column, util::RandomSource& ties) const {
  return ties.next_u32() < keep_lo_[cell] ? column : static_cast<int>(cells_[cell].alias);
}

int ClampedLaplaceTable::sample(int x, util::RandomSource& rng) const {
  if (identity_) return x;
  const int low = 32 - bits_;
  const std::uint32_t u = rng.next_u32();
  const int column = static_cast<int>(u >> low);
  const std::uint32_t r = u & ((std::uint32_t{1} << low) - 1);
  const std::size_t idx = (static_cast<std::size_t>(x) << bits_) | static_cast<std::size_t>(column);
  const Cell c = cells_[idx];
  if (r == c.keep_hi) return resolve_tie(idx, column, rng);
  return r < c.keep_hi ? column : static_cast<int>(c.alias);
}

namespace {

// The per-value kernel with the column count fixed at compile time. The column choice is a
// select, not a branch: a split column goes either way at random, and a mispredicted branch per
// value cost 4x the throughput. Ties (the word's low bits equal the threshold's top part,
// p ~ 2^-24 or less) are only noted in the loop and settled by a second look at the block, so
// `in` must not overlap `out` (apply() copies the levels first).
template <int kBits, int kShift, typename Cell>
void release_alias(const Cell* cells, const std::uint32_t* keep_lo, const std::uint8_t* in,
                   const std::uint32_t* words, std::size_t n, int runtime_shift,
                   std::uint8_t half, std::uint8_t* out, util::RandomSource& ties) {
  // The two shifts image DP uses (8 - bits when rendering, 0 for levels) are constants here.
  const int shift = kShift >= 0 ? kShift : runtime_shift;
  constexpr int kLow = 32 - kBits;
  constexpr std::uint32_t kMask = (std::uint32_t{1} << kLow) - 1;
  constexpr std::size_t kBlock = 1024;
  for (std::size_t start = 0; start < n; start += kBlock) {
    const std::size_t end = std::min(n, start + kBlock);
    std::uint32_t any_tie = 0;
    for (std::size_t i = start; i < end; ++i) {
      const std::uint32_t u = words[i];
      const std::uint32_t column = u >> kLow;
      const Cell c = cells[(static_cast<std::size_t>(in[i] >> shift) << kBits) | column];
      const std::uint32_t r = u & kMask;
      const std::uint32_t keep = 0u - static_cast<std::uint32_t>(r < c.keep_hi);  // all ones or 0
      const std::uint32_t y = c.alias ^ ((column ^ c.alias) & keep);
      any_tie |= static_cast<std::uint32_t>(r == c.keep_hi);
      out[i] = static_cast<std::uint8_t>((y << shift) | half);
    }
    if (any_tie == 0) [[likely]]
      continue;
    for (std::size_t i = start; i < end; ++i) {
      const std::uint32_t column = words[i] >> kLow;
      const std::size_t idx = (static_cast<std::size_t>(in[i] >> shift) << kBits) | column;
      if ((words[i] & kMask) != cells[idx].keep_hi) continue;
      const std::uint32_t y = ties.next_u32() < keep_lo[idx] ? column : cells[idx].alias;
      out[i] = static_cast<std::uint8_t>((y << shift) | half);
    }
  }
}

template <int kBits, typename Cell>
void release_bits(const Cell* cells, const std::uint32_t* keep_lo, const std::uint8_t* in,
                  const std::uint32_t* words, std::size_t n, int shift, std::uint8_t half,
                  std::uint8_t* out, util::RandomSource& ties) {
  if (shift == 8 - kBits)
    return release_alias<kBits, 8 - kBits>(cells, keep_lo, in, words, n, shift, half, out, ties);
  if (shift == 0)
    return release_alias<kBits, 0>(cells, keep_lo, in, words, n, shift, half, out, ties);
  release_alias<kBits, -1>(cells, keep_lo, in, words, n, shift, half, out, ties);
}

}  // namespace

void ClampedLaplaceTable::release_rendered(const std::uint8_t* in, const std::uint32_t* words,
                                           std::size_t n, int shift, std::uint8_t half,
                                           std::uint8_t* out, util::RandomSource& ties) const {
  if (identity_) {
    for (std::size_t i = 0; i < n; ++i)
      out[i] = static_cast<std::uint8_t>(((in[i] >> shift) << shift) | half);
    return;
  }
  const Cell* c = cells_.data();
  const std::uint32_t* lo = keep_lo_.data();
  switch (bits_) {
    case 1: return release_bits<1>(c, lo, in, words, n, shift, half, out, ties);
    case 2: return release_bits<2>(c, lo, in, words, n, shift, half, out, ties);
    case 3: return release_bits<3>(c, lo, in, words, n, shift, half, out, ties);
    case 4: return release_bits<4>(c, lo, in, words, n, shift, half, out, ties);
    case 5: return release_bits<5>(c, lo, in, words, n, shift, half, out, ties);
    case 6: return release_bits<6>(c, lo, in, words, n, shift, half, out, ties);
    case 7: return release_bits<7>(c, lo, in, words, n, shift, half, out, ties);
    default: return release_bits<8>(c, lo, in, words, n, shift, half, out, ties);
  }
}

void ClampedLaplaceTable::apply(std::uint8_t* levels, const std::uint32_t* words, std::size_t n,
                                util::RandomSource& ties) const {
  // Levels are already in [0, L-1]: shift 0, nothing to render. The kernel reads its input
  // again to settle ties, so it works from a copy.
  constexpr std::size_t kChunk = 4096;
  std::uint8_t copy[kChunk];
  for (std::size_t start = 0; start < n; start += kChunk) {
    const std::size_t m = std::min(kChunk, n - start);
    std::memcpy(copy, levels + start, m);
    release_rendered(copy, words + start, m, 0, 0, levels + start, ties);
  }
}

}  // namespace ppreid::deid
