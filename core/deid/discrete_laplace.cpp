#include "core/deid/discrete_laplace.h"

#include <algorithm>
#include <cmath>
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

ClampedLaplaceTable::ClampedLaplaceTable(int levels, double t) : levels_(levels), t_(t) {
  if (levels < 2 || levels > 256)
    throw Error("image DP needs between 2 and 256 levels per channel (got " +
                std::to_string(levels) + ")");
  if (!(t > 0.0))
    throw Error("image DP noise scale epsilon/Delta must be positive (got " + std::to_string(t) +
                ")");
  identity_ = std::isinf(t);
  if (identity_) return;
  const int L = levels;
  constexpr double kScale = 4294967296.0;  // 2^32
  thresholds_.resize(static_cast<size_t>(L) * (L - 1));
  for (int x = 0; x < L; ++x) {
    double cdf = 0.0;
    std::uint64_t previous = 0;
    for (int y = 0; y < L - 1; ++y) {
      cdf += probability(x, y);
      auto scaled = static_cast<std::uint64_t>(std::llround(std::min(cdf, 1.0) * kScale));
      // Every output keeps at least one of the 2^32 slots: a zero-width slot would make some
      // release impossible for one input and possible for another, which no epsilon covers.
      scaled = std::max(scaled, previous + 1);
      scaled = std::min<std::uint64_t>(scaled, static_cast<std::uint64_t>(kScale) - (L - 1 - y));
      thresholds_[static_cast<size_t>(x) * (L - 1) + y] = static_cast<std::uint32_t>(scaled);
      previous = scaled;
    }
  }
  if (L > 16) {
    guide_.resize(static_cast<size_t>(L) * 256);
    for (int x = 0; x < L; ++x) {
      const std::uint32_t* row = thresholds_.data() + static_cast<size_t>(x) * (L - 1);
      int y = 0;
      for (int g = 0; g < 256; ++g) {
        std::uint32_t u = static_cast<std::uint32_t>(g) << 24;
        while (y < L - 1 && u >= row[y]) ++y;
        guide_[static_cast<size_t>(x) * 256 + g] = static_cast<std::uint8_t>(y);
      }
    }
  }
}

double ClampedLaplaceTable::probability(int x, int y) const {
  const int last = levels_ - 1;
  if (y < 0 || y > last) return 0.0;
  if (y == 0) return tail_at_least(x, t_);              // P(x + K <= 0) = P(K >= x)
  if (y == last) return tail_at_least(last - x, t_);    // P(x + K >= L-1)
  return discrete_laplace_pmf(y - x, t_);
}

namespace {

template <int L>
void release_fixed(const std::uint32_t* thresholds, const std::uint8_t* in,
                   const std::uint32_t* words, std::size_t n, int shift, std::uint8_t half,
                   std::uint8_t* out) {
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t* row = thresholds + (in[i] >> shift) * (L - 1);
    const std::uint32_t u = words[i];
    int y = 0;
    for (int j = 0; j < L - 1; ++j) y += u >= row[j];
    out[i] = static_cast<std::uint8_t>((y << shift) | half);
  }
}

}  // namespace

void ClampedLaplaceTable::release_rendered(const std::uint8_t* in, const std::uint32_t* words,
                                           std::size_t n, int shift, std::uint8_t half,
                                           std::uint8_t* out) const {
  const std::uint32_t* thr = thresholds_.data();
  if (identity_) {
    for (std::size_t i = 0; i < n; ++i)
      out[i] = static_cast<std::uint8_t>(((in[i] >> shift) << shift) | half);
    return;
  }
  switch (levels_) {
    case 2: return release_fixed<2>(thr, in, words, n, shift, half, out);
    case 4: return release_fixed<4>(thr, in, words, n, shift, half, out);
    case 8: return release_fixed<8>(thr, in, words, n, shift, half, out);
    case 16: return release_fixed<16>(thr, in, words, n, shift, half, out);
    default:
      for (std::size_t i = 0; i < n; ++i)
        out[i] = static_cast<std::uint8_t>((sample(in[i] >> shift, words[i]) << shift) | half);
  }
}

void ClampedLaplaceTable::apply(std::uint8_t* levels, const std::uint32_t* words,
                                std::size_t n) const {
  if (identity_) return;
  for (std::size_t i = 0; i < n; ++i)
    levels[i] = static_cast<std::uint8_t>(sample(levels[i], words[i]));
}

void ClampedLaplaceTable::apply(std::uint8_t* levels, std::size_t n,
                                util::RandomSource& rng) const {
  if (identity_) return;
  constexpr std::size_t kChunk = 4096;
  std::uint32_t words[kChunk];
  for (std::size_t start = 0; start < n; start += kChunk) {
    std::size_t m = std::min(kChunk, n - start);
    rng.fill(words, m);
    apply(levels + start, words, m);
  }
}

}  // namespace ppreid::deid
