#include "aggregator/coordinate_wise.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "aggregator/fedavg.h"
#include "tests/aggregator/agg_fixtures.h"
#include "tests/support/errors.h"

namespace ppreid::agg {
namespace {

using ::testing::HasSubstr;
using fixtures::config_of;
using fixtures::random_like;
using fixtures::small_model;
using fixtures::update_of;

NamedTensors filled(const NamedTensors& like, float value, int64_t counter = 10) {
  NamedTensors out;
  for (const auto& [name, t] : like)
    out.emplace_back(name, t.is_floating_point() ? torch::full_like(t, value) : torch::tensor(counter));
  return out;
}

NamedTensors aggregate(Strategy& s, const NamedTensors& global,
                       const std::vector<NamedTensors>& sites) {
  s.begin_round(global);
  for (std::size_t k = 0; k < sites.size(); ++k)
    s.add(update_of(fixtures::site(k), 0, 1 + static_cast<int64_t>(k), sites[k]));
  return s.finish();
}

TEST(SortingNetwork, SortsEveryZeroOneInputUpTo14) {
  // The 0-1 principle: a comparator network that sorts all 2^n 0/1 sequences sorts everything.
  for (int n = 1; n <= 14; ++n) {
    auto network = detail::sorting_network(n);
    for (uint32_t bits = 0; bits < (1u << n); ++bits) {
      std::vector<int> v(n);
      for (int i = 0; i < n; ++i) v[i] = (bits >> i) & 1;
      for (auto [a, b] : network)
        if (v[a] > v[b]) std::swap(v[a], v[b]);
      ASSERT_TRUE(std::is_sorted(v.begin(), v.end())) << "n=" << n << " bits=" << bits;
    }
  }
}

TEST(SortingNetwork, SortsRandomInputsUpTo64AndPrunedNetworksGetTheirRanks) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> uniform(-1, 1);
  for (int n : {15, 16, 17, 31, 32, 33, 64}) {
    auto network = detail::sorting_network(n);
    int lo = (n - 1) / 2, hi = n - lo;
    auto pruned = detail::prune_network(network, lo, hi);
    EXPECT_LT(pruned.size(), network.size()) << n;
    for (int trial = 0; trial < 200; ++trial) {
      std::vector<float> v(n);
      for (auto& x : v) x = uniform(rng);
      std::vector<float> full = v, part = v, want = v;
      std::sort(want.begin(), want.end());
      for (auto [a, b] : network)
        if (full[a] > full[b]) std::swap(full[a], full[b]);
      for (auto [a, b] : pruned)
        if (part[a] > part[b]) std::swap(part[a], part[b]);
      ASSERT_EQ(full, want) << n;
      for (int r = lo; r < hi; ++r) ASSERT_EQ(part[r], want[r]) << n;
    }
  }
}

TEST(TrimmedMeanKernel, MatchesSortingWithLibTorch) {
  // Odd sizes and a tail that is not a multiple of the 16 lanes.
  for (int n : {1, 2, 3, 4, 5, 8, 9, 32}) {
    torch::manual_seed(n);
    torch::Tensor stacked = torch::randn({n, 1000 + n});
    std::vector<const float*> inputs;
    std::vector<torch::Tensor> rows;
    for (int i = 0; i < n; ++i) rows.push_back(stacked[i].contiguous());
    for (const auto& r : rows) inputs.push_back(r.data_ptr<float>());
    torch::Tensor sorted = std::get<0>(stacked.to(torch::kFloat64).sort(0));
    for (int k = 0; 2 * k < n; ++k) {
      torch::Tensor out = torch::empty({stacked.size(1)});
      detail::trimmed_mean_kernel(inputs, out.data_ptr<float>(), out.numel(), k);
      torch::Tensor want = sorted.narrow(0, k, n - 2 * k).mean(0).to(torch::kFloat32);
      EXPECT_TRUE(torch::allclose(out, want, 1e-6, 1e-6)) << "n=" << n << " k=" << k;
    }
  }
}

TEST(Median, HandComputedValuesForOddAndEvenCounts) {
  NamedTensors global = small_model();
  CoordinateWise median(config_of(StrategyKind::kMedian));
  // {5, 1, 3} -> 3; {5, 1, 3, 10} -> (3 + 5) / 2 = 4. Counters: max.
  NamedTensors odd = aggregate(median, global, {filled(global, 5, 11), filled(global, 1, 14),
                                                filled(global, 3, 12)});
  EXPECT_TRUE(torch::equal(odd[0].second, torch::full({2, 3}, 3.0f)));
  EXPECT_EQ(odd[4].second.item<int64_t>(), 14);
  NamedTensors even = aggregate(median, global, {filled(global, 5), filled(global, 1),
                                                 filled(global, 3), filled(global, 10)});
  for (std::size_t i = 0; i < 4; ++i)
    EXPECT_TRUE(torch::equal(even[i].second, torch::full_like(even[i].second, 4.0f)));
}

TEST(TrimmedMean, HandComputedValue) {
  // 5 sites, trim 0.2: floor(0.2 * 5) = 1 dropped at each end.
  // {7, -2, 3, 100, 4} -> sorted -2 3 4 7 100 -> mean(3, 4, 7) = 14 / 3.
  NamedTensors global = small_model();
  CoordinateWise trimmed(config_of(StrategyKind::kTrimmedMean, 0.2));
  EXPECT_EQ(trimmed.trimmed_per_side(5), 1u);
  EXPECT_EQ(trimmed.trimmed_per_side(4), 0u);  // floor(0.8)
  NamedTensors r = aggregate(trimmed, global,
                             {filled(global, 7), filled(global, -2), filled(global, 3),
                              filled(global, 100), filled(global, 4)});
  for (std::size_t i = 0; i < 4; ++i)
    EXPECT_TRUE(torch::allclose(r[i].second, torch::full_like(r[i].second, 14.0f / 3), 0, 1e-6));
}

TEST(TrimmedMean, DeltaUpdatesAreTurnedIntoWeights) {
  NamedTensors global = small_model(1.0f);
  CoordinateWise median(config_of(StrategyKind::kMedian));
  median.begin_round(global);
  median.add(update_of("a", 0, 1, filled(global, 0.5f), UpdateKind::kDelta));   // global + 0.5
  median.add(update_of("b", 0, 1, filled(global, -1.0f), UpdateKind::kDelta));  // global - 1
  median.add(update_of("c", 0, 1, filled(global, 2.0f), UpdateKind::kDelta));   // global + 2
  NamedTensors r = median.finish();
  EXPECT_TRUE(torch::allclose(r[0].second, global[0].second + 0.5f));
}

// The acceptance check: with one site sending 1e6-scaled values, median and trimmed mean
// stay within the honest sites' range per coordinate; FedAvg does not.
TEST(RobustAggregation, ResistsOneSiteSendingHugeValues) {
  NamedTensors global = random_like(small_model(), 3);
  std::vector<NamedTensors> sites;
  for (int k = 0; k < 4; ++k) sites.push_back(random_like(global, 20 + k, 1.0, 0.1));
  torch::Tensor low = sites[0][0].second, high = sites[0][0].second;
  for (const auto& s : sites) {
    low = torch::minimum(low, s[0].second);
    high = torch::maximum(high, s[0].second);
  }
  NamedTensors attack;
  for (const auto& [name, t] : sites[0])
    attack.emplace_back(name, t.is_floating_point() ? t * 1e6 : t.clone());
  sites.push_back(attack);

  for (auto [kind, trim] : {std::pair{StrategyKind::kMedian, 0.0},
                            std::pair{StrategyKind::kTrimmedMean, 0.2}}) {
    CoordinateWise robust(config_of(kind, trim));
    NamedTensors r = aggregate(robust, global, sites);
    EXPECT_TRUE((r[0].second >= low).all().item<bool>()) << to_string(kind);
    EXPECT_TRUE((r[0].second <= high).all().item<bool>()) << to_string(kind);
  }
  FedAvg fedavg({});
  NamedTensors r = aggregate(fedavg, global, sites);
  EXPECT_GT(r[0].second.abs().max().item<double>(), 1e4);
}

TEST(CoordinateWise, HoldsEveryUpdateUntilFinish) {
  NamedTensors global = random_like(small_model(), 1);
  const std::size_t model_bytes = byte_size(global);
  CoordinateWise median(config_of(StrategyKind::kMedian));
  median.begin_round(global);
  for (int k = 1; k <= 3; ++k) {
    median.add(update_of(fixtures::site(k), 0, 1, random_like(global, k)));
    EXPECT_EQ(median.held_bytes(), k * model_bytes);
  }
  median.finish();
  EXPECT_EQ(median.held_bytes(), 0u);
  EXPECT_THAT(testing::error_of([&] { median.finish(); }), HasSubstr("outside a round"));
}

TEST(CoordinateWise, OtherFloatingDtypesUseTheLibTorchPath) {
  NamedTensors global = {{"w", torch::zeros({5}, torch::kFloat64)}};
  CoordinateWise median(config_of(StrategyKind::kMedian));
  NamedTensors r = aggregate(median, global,
                             {{{"w", torch::full({5}, 1.0, torch::kFloat64)}},
                              {{"w", torch::full({5}, 9.0, torch::kFloat64)}},
                              {{"w", torch::full({5}, 2.0, torch::kFloat64)}}});
  EXPECT_EQ(r[0].second.scalar_type(), torch::kFloat64);
  EXPECT_TRUE(torch::equal(r[0].second, torch::full({5}, 2.0, torch::kFloat64)));
}

}  // namespace
}  // namespace ppreid::agg
