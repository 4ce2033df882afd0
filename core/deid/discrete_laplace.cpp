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
  const int L = levels;
  thresholds_.resize(static_cast<size_t>(L) * (L - 1));
  constexpr double kScale = 4294967296.0;  // 2^32
  for (int x = 0; x < L; ++x) {
    double cdf = 0.0;
    std::uint64_t previous = 0;
    for (int y = 0; y < L - 1; ++y) {
      cdf += probability(x, y);
      auto scaled = static_cast<std::uint64_t>(std::llround(std::min(cdf, 1.0) * kScale));
      // Keep every output reachable unless it truly has probability 0 (t = inf): a zero-width
      // slot would make some releases impossible, which no epsilon covers.
      if (!std::isinf(t) && scaled <= previous) scaled = previous + 1;
      scaled = std::min<std::uint64_t>(scaled, static_cast<std::uint64_t>(kScale) - (L - 1 - y));
      if (std::isinf(t)) scaled = y < x ? 0 : static_cast<std::uint64_t>(kScale);
      thresholds_[static_cast<size_t>(x) * (L - 1) + y] = scaled;
      previous = scaled;
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

int ClampedLaplaceTable::sample(int x, std::uint32_t u) const {
  const std::uint64_t* row = thresholds_.data() + static_cast<size_t>(x) * (levels_ - 1);
  // Output = number of thresholds at or below u.
  if (levels_ <= 16) {
    int out = 0;
    for (int j = 0; j < levels_ - 1; ++j) out += (u >= row[j]) ? 1 : 0;
    return out;
  }
  return static_cast<int>(std::upper_bound(row, row + levels_ - 1, static_cast<std::uint64_t>(u)) -
                          row);
}

void ClampedLaplaceTable::apply(std::uint8_t* levels, std::size_t n,
                                util::RandomSource& rng) const {
  constexpr std::size_t kChunk = 4096;
  std::uint32_t words[kChunk];
  for (std::size_t start = 0; start < n; start += kChunk) {
    std::size_t m = std::min(kChunk, n - start);
    rng.fill(words, m);
    std::uint8_t* v = levels + start;
    for (std::size_t i = 0; i < m; ++i) v[i] = static_cast<std::uint8_t>(sample(v[i], words[i]));
  }
}

}  // namespace ppreid::deid
