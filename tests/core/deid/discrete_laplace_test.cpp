#include "core/deid/discrete_laplace.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

namespace ppreid::deid {
namespace {

// Pearson chi-square of observed counts against expected probabilities; bins with tiny
// expectation are pooled into the last bin so the statistic's distribution is valid.
double chi_square(const std::vector<double>& counts, const std::vector<double>& probs, double n) {
  double stat = 0, pooled_obs = 0, pooled_exp = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    double e = probs[i] * n;
    if (e < 5) {
      pooled_obs += counts[i];
      pooled_exp += e;
      continue;
    }
    stat += (counts[i] - e) * (counts[i] - e) / e;
  }
  if (pooled_exp > 0) stat += (pooled_obs - pooled_exp) * (pooled_obs - pooled_exp) / pooled_exp;
  return stat;
}

TEST(DiscreteLaplace, PmfSumsToOneAndIsSymmetric) {
  for (double t : {0.05, 0.7, 3.0}) {
    double total = 0;
    for (int k = -2000; k <= 2000; ++k) total += discrete_laplace_pmf(k, t);
    EXPECT_NEAR(total, 1.0, 1e-9) << t;
    EXPECT_DOUBLE_EQ(discrete_laplace_pmf(4, t), discrete_laplace_pmf(-4, t));
  }
  // Hand value: t = ln 2 gives P(0) = (1 - 1/2) / (1 + 1/2) = 1/3 and P(1) = 1/6.
  EXPECT_NEAR(discrete_laplace_pmf(0, std::log(2.0)), 1.0 / 3, 1e-15);
  EXPECT_NEAR(discrete_laplace_pmf(1, std::log(2.0)), 1.0 / 6, 1e-15);
}

// With many levels and the input in the middle, the table's output minus the input is the
// noise itself; its histogram must follow the pmf (chi-square, 30 bins, p = 0.001 critical value
// 59.7), and must NOT follow the pmf of a 20% different scale (the test has power).
TEST(DiscreteLaplace, TableNoiseMatchesPmf) {
  const double t = 0.3;
  const int center = 128, half = 15;
  ClampedLaplaceTable table(256, t);
  util::DrbgSource rng(2024, 0);
  const int n = 200000;
  std::vector<double> counts(2 * half + 1, 0.0);
  for (int i = 0; i < n; ++i) {
    int k = table.sample(center, rng.next_u32()) - center;
    counts[std::clamp(k, -half, half) + half] += 1;
  }
  auto probs_for = [&](double scale) {
    std::vector<double> p(2 * half + 1);
    for (int k = -half + 1; k < half; ++k) p[k + half] = discrete_laplace_pmf(k, scale);
    double tail = 0;
    for (int k = half; k < 400; ++k) tail += discrete_laplace_pmf(k, scale);
    p[0] = p[2 * half] = tail;
    return p;
  };
  EXPECT_LT(chi_square(counts, probs_for(t), n), 59.7);
  EXPECT_GT(chi_square(counts, probs_for(t * 1.2), n), 59.7);
}

// Sampling the clamped distribution from the table is the same mechanism as clamp(x + K):
// compare each against the exact probabilities, for every input level of a 4-level channel.
TEST(DiscreteLaplace, ClampedTableEqualsClampOfNoise) {
  const int levels = 4;
  const double t = 0.6;
  ClampedLaplaceTable table(levels, t);
  util::DrbgSource rng(99, 1);
  const int n = 100000;
  for (int x = 0; x < levels; ++x) {
    std::vector<double> from_table(levels, 0), from_clamp(levels, 0), exact(levels, 0);
    for (int i = 0; i < n; ++i) {
      from_table[table.sample(x, rng.next_u32())] += 1;
      std::int64_t y = x + sample_discrete_laplace(t, rng);
      from_clamp[std::clamp<std::int64_t>(y, 0, levels - 1)] += 1;
    }
    double total = 0;
    for (int y = 0; y < levels; ++y) total += exact[y] = table.probability(x, y);
    EXPECT_NEAR(total, 1.0, 1e-12);
    // df = 3: p = 0.001 critical value 16.27.
    EXPECT_LT(chi_square(from_table, exact, n), 16.27) << "table, x=" << x;
    EXPECT_LT(chi_square(from_clamp, exact, n), 16.27) << "clamp, x=" << x;
  }
  // Hand check of one clamped probability: P(out = 0 | x = 1) = P(K <= -1) = q / (1 + q).
  double q = std::exp(-t);
  EXPECT_NEAR(table.probability(1, 0), q / (1 + q), 1e-15);
}

TEST(DiscreteLaplace, TinyScaleSaturatesButKeepsFullSupport) {
  // Preset A at epsilon 1 (paper calibration): t = 1 / 221184. The noise dwarfs the 4 levels, so
  // the release is 0 or 3 with probability ~1/2 each; the inner levels keep their tiny mass
  // t/2 * ... > 0, so every output stays reachable.
  const double t = 1.0 / 221184;
  ClampedLaplaceTable table(4, t);
  for (int x = 0; x < 4; ++x) {
    EXPECT_NEAR(table.probability(x, 0), 0.5, 1e-4) << x;
    EXPECT_NEAR(table.probability(x, 3), 0.5, 1e-4) << x;
    for (int y : {1, 2}) {
      EXPECT_GT(table.probability(x, y), 0.0);
      EXPECT_NEAR(table.probability(x, y), discrete_laplace_pmf(y - x, t), 1e-18);
    }
  }
  EXPECT_EQ(table.sample(0, 0u), 0);
  EXPECT_EQ(table.sample(0, 0xFFFFFFFFu), 3);
}

TEST(RandomSource, DrbgIsDeterministicPerStream) {
  util::DrbgSource a(5, 1), b(5, 1), c(5, 2), d(6, 1);
  std::vector<std::uint32_t> wa(64), wb(64), wc(64), wd(64);
  a.fill(wa.data(), 64);
  b.fill(wb.data(), 64);
  c.fill(wc.data(), 64);
  d.fill(wd.data(), 64);
  EXPECT_EQ(wa, wb);
  EXPECT_NE(wa, wc);
  EXPECT_NE(wa, wd);
  // Bytes look uniform: the mean of 64k words is near 2^31.
  std::vector<std::uint32_t> many(65536);
  util::CsprngSource csprng;
  csprng.fill(many.data(), many.size());
  double mean = 0;
  for (auto w : many) mean += w;
  mean /= many.size();
  EXPECT_NEAR(mean / 4294967296.0, 0.5, 0.01);
}

}  // namespace
}  // namespace ppreid::deid
