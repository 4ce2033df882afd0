#include "aggregator/krum.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "aggregator/pairwise_distances.h"
#include "core/util/config.h"
#include "tests/aggregator/agg_fixtures.h"
#include "tests/support/errors.h"

namespace ppreid::agg {
namespace {

using ::testing::ElementsAre;
using fixtures::update_of;
using testing::error_of;

StrategyConfig krum_config(StrategyKind kind, std::int64_t f, std::int64_t m = 0,
                           bool weighted = true) {
  StrategyConfig c;
  c.kind = kind;
  c.f = f;
  c.m = m;
  c.weighted = weighted;
  return c;
}

// A one-coordinate model (plus a counter), so distances are easy to compute by hand.
NamedTensors scalar_model(float value, std::int64_t counter = 10) {
  return {{"w", torch::tensor({value})}, {"n", torch::tensor(counter)}};
}

struct Outcome {
  NamedTensors weights;
  nlohmann::json report;
};

Outcome run(const StrategyConfig& config, const NamedTensors& global,
            const std::vector<NamedTensors>& sites, const std::vector<std::int64_t>& samples = {},
            UpdateKind kind = UpdateKind::kWeights) {
  auto strategy = make_strategy(config);
  strategy->begin_round(global);
  for (std::size_t k = 0; k < sites.size(); ++k)
    strategy->add(update_of(fixtures::site(k), 0, samples.empty() ? 1 : samples[k], sites[k], kind));
  Outcome out{strategy->finish(), strategy->round_report()};
  EXPECT_EQ(strategy->round_report(), out.report) << "the report outlives finish()";
  return out;
}

float value_of(const Outcome& o) { return o.weights[0].second.item<float>(); }

std::vector<NamedTensors> scalars(const std::vector<float>& values) {
  std::vector<NamedTensors> out;
  for (std::size_t k = 0; k < values.size(); ++k)
    out.push_back(scalar_model(values[k], 10 + static_cast<std::int64_t>(k)));
  return out;
}

// Hand-computed (f = 1, n = 5, k = n - f - 2 = 2 nearest others): scores of 0, 1, 2, 3, 100 are
// 1+4 = 5, 1+1 = 2, 1+1 = 2, 1+4 = 5, 9409+9604 = 19013.
TEST(Krum, SelectsTheUpdateWithTheLowestScoreFirstOnATie) {
  const auto sites = scalars({0, 1, 2, 3, 100});
  const Outcome o = run(krum_config(StrategyKind::kKrum, 1), scalar_model(0), sites);
  EXPECT_FLOAT_EQ(value_of(o), 1.0f);
  EXPECT_EQ(o.report["selected"], nlohmann::json({"s1"}));
  // Gram products round (the updates are centred on their mean, 21.2): equal to 1e-12.
  EXPECT_NEAR(o.report["scores"]["s0"].get<double>(), 5.0, 1e-12);
  EXPECT_NEAR(o.report["scores"]["s2"].get<double>(), 2.0, 1e-12);
  EXPECT_NEAR(o.report["scores"]["s4"].get<double>(), 19013.0, 1e-9);
  EXPECT_EQ(o.weights[1].second.item<std::int64_t>(), 11) << "the counter of the selected update";
}

TEST(Krum, MultiKrumAveragesTheMLowestScoresBySamplesOrUniformly) {
  const auto sites = scalars({0, 1, 2, 3, 100});
  const std::vector<std::int64_t> samples = {10, 20, 30, 40, 50};
  // m = 3 keeps s1, s2 (score 2) and s0 (score 5, before s3 on the tie).
  Outcome o = run(krum_config(StrategyKind::kMultiKrum, 1, 3), scalar_model(0), sites, samples);
  EXPECT_NEAR(value_of(o), (20 * 1 + 30 * 2 + 10 * 0) / 60.0, 1e-6);
  EXPECT_EQ(o.report["selected"], nlohmann::json({"s1", "s2", "s0"}));
  o = run(krum_config(StrategyKind::kMultiKrum, 1, 3, false), scalar_model(0), sites, samples);
  EXPECT_NEAR(value_of(o), 1.0, 1e-6);
  // m = 0 keeps n - f = 4: everything but 100.
  o = run(krum_config(StrategyKind::kMultiKrum, 1, 0), scalar_model(0), sites, samples);
  EXPECT_NEAR(value_of(o), (20 * 1 + 30 * 2 + 10 * 0 + 40 * 3) / 100.0, 1e-6);
  EXPECT_EQ(o.weights[1].second.item<std::int64_t>(), 13) << "max counter of the kept ones";
}

// Hand-computed Bulyan with f = 1 on 0, 1, 2, 3, 4, 5, 100 (n = 7 = 4f + 3, theta = 5,
// beta = 3). Krum rounds on the shrinking set (k = |set| - 3 nearest, at least 1):
//   all 7 (k = 4): 30, 15, 10, 10, 15, 30, big          -> 2
//   {0,1,3,4,5,100} (k = 3): 26, 14, 9, 11, 21, big     -> 3
//   {0,1,4,5,100} (k = 2): 17, 10, 10, 17, big          -> 1 (tie with 4: first)
//   {0,4,5,100} (k = 1): 16, 1, 1, big                  -> 4 (tie with 5: first)
//   {0,5,100} (k = 1): 25, 25, 9025                     -> 0
// The selected {2, 3, 1, 4, 0} have median 2; the 3 closest (1, 2, 3) average to 2. Selecting
// 5 instead of 0 would give 3.
TEST(Krum, BulyanSelectsByRepeatedKrumThenAveragesTheBetaClosestToTheMedian) {
  const auto sites = scalars({0, 1, 2, 3, 4, 5, 100});
  const Outcome o = run(krum_config(StrategyKind::kBulyan, 1), scalar_model(0), sites);
  EXPECT_EQ(o.report["selected"], nlohmann::json({"s2", "s3", "s1", "s4", "s0"}));
  EXPECT_FLOAT_EQ(value_of(o), 2.0f);
  EXPECT_EQ(o.weights[1].second.item<std::int64_t>(), 14);
}

TEST(Krum, ClosestToMedianKernelMatchesHandComputedColumns) {
  // Per coordinate: [1, 2, 10, 11, 12] beta 3: median 10, closest 10, 11, 12 -> 11;
  // [0, 4, 6, 7, 100] beta 3: median 6, closest 4, 6, 7 -> 17/3;
  // [5, 5, 5, 5, 5] -> 5.
  std::vector<std::vector<float>> cols = {{12, 7, 5}, {1, 100, 5}, {11, 4, 5}, {2, 0, 5}, {10, 6, 5}};
  std::vector<const float*> inputs;
  for (auto& c : cols) inputs.push_back(c.data());
  std::vector<float> out(3);
  detail::closest_to_median_kernel(inputs, out.data(), 3, 3);
  EXPECT_FLOAT_EQ(out[0], 11.0f);
  EXPECT_FLOAT_EQ(out[1], 17.0f / 3.0f);
  EXPECT_FLOAT_EQ(out[2], 5.0f);
  // Even count: [0, 4, 6, 7] beta 2: median 5, closest 4 and 6 -> 5.
  std::vector<std::vector<float>> even = {{7}, {0}, {6}, {4}};
  inputs.clear();
  for (auto& c : even) inputs.push_back(c.data());
  detail::closest_to_median_kernel(inputs, out.data(), 1, 2);
  EXPECT_FLOAT_EQ(out[0], 5.0f);
}

TEST(Krum, LimitsAreCheckedWithTheLimitAndTheCountInTheMessage) {
  struct Case {
    StrategyConfig config;
    std::size_t min;
    std::string message;  // for min - 1 updates
  };
  const std::vector<Case> cases = {
      {krum_config(StrategyKind::kKrum, 1), 5, "krum with f = 1 needs n > 2f + 2 = 4 updates; the round has 4"},
      {krum_config(StrategyKind::kKrum, 2), 7, "krum with f = 2 needs n > 2f + 2 = 6 updates; the round has 6"},
      {krum_config(StrategyKind::kMultiKrum, 1, 6), 6, "multi_krum with m = 6 needs n >= m = 6 updates; the round has 5"},
      {krum_config(StrategyKind::kBulyan, 1), 7, "bulyan with f = 1 needs n >= 4f + 3 = 7 updates; the round has 6"},
      {krum_config(StrategyKind::kBulyan, 2), 11, "bulyan with f = 2 needs n >= 4f + 3 = 11 updates; the round has 10"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(c.config.min_updates(), c.min) << c.message;
    EXPECT_EQ(c.config.count_problem(c.min), "");
    EXPECT_EQ(c.config.count_problem(c.min - 1), c.message);
    auto strategy = make_strategy(c.config);
    strategy->begin_round(scalar_model(0));
    for (std::size_t k = 0; k + 1 < c.min; ++k)
      strategy->add(update_of(fixtures::site(k), 0, 1, scalar_model(static_cast<float>(k))));
    EXPECT_THAT(error_of([&] { strategy->finish(); }), ::testing::HasSubstr(c.message));
  }
  EXPECT_EQ(StrategyConfig{}.min_updates(), 1u) << "fedavg";
}

TEST(Krum, ConfigReadsFAndMAndRefusesKeysOfOtherStrategies) {
  auto read = [](const std::string& yaml) {
    auto reader = util::ConfigReader::from_string(yaml, "agg.yaml");
    return StrategyConfig::read(reader);
  };
  StrategyConfig c = read("name: multi_krum\nf: 2\nm: 3\nweighted: false\n");
  EXPECT_EQ(c.kind, StrategyKind::kMultiKrum);
  EXPECT_EQ(c.f, 2);
  EXPECT_EQ(c.m, 3);
  EXPECT_FALSE(c.weighted);
  EXPECT_EQ(StrategyConfig::from_json(c.to_json(), "checkpoint").to_json(), c.to_json());
  EXPECT_EQ(read("name: bulyan\nf: 1\n").kind, StrategyKind::kBulyan);
  EXPECT_THAT(error_of([&] { read("name: krum\nm: 3\n"); }),
              ::testing::HasSubstr("does not apply to strategy 'krum'"));
  EXPECT_THAT(error_of([&] { read("name: krum\nf: -1\n"); }), ::testing::HasSubstr("f = -1"));
  EXPECT_THAT(error_of([&] { read("name: fedavg\nf: 1\n"); }),
              ::testing::HasSubstr("does not apply to strategy 'fedavg'"));
}

// --- agreement with a straightforward implementation of Flower's semantics ---------------------

using Flat = std::vector<double>;

Flat flatten(const NamedTensors& t) {
  Flat out;
  for (const auto& [name, x] : t) {
    if (!x.is_floating_point()) continue;
    auto c = x.to(torch::kFloat64).contiguous();
    out.insert(out.end(), c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
  }
  return out;
}

double sq(const Flat& a, const Flat& b) {
  double s = 0;
  for (std::size_t j = 0; j < a.size(); ++j) s += (a[j] - b[j]) * (a[j] - b[j]);
  return s;
}

// Flower's aggregate_krum scoring: for each i, sort its row of squared distances and sum the
// entries 1..k (entry 0 is itself); argmin / the m smallest.
std::vector<double> reference_scores(const std::vector<Flat>& w, std::int64_t f) {
  const std::size_t n = w.size();
  const std::size_t k = static_cast<std::size_t>(std::max<std::int64_t>(1, static_cast<std::int64_t>(n) - f - 2));
  std::vector<double> scores;
  for (std::size_t i = 0; i < n; ++i) {
    std::vector<double> row;
    for (std::size_t j = 0; j < n; ++j) row.push_back(sq(w[i], w[j]));
    std::sort(row.begin(), row.end());
    scores.push_back(std::accumulate(row.begin() + 1, row.begin() + 1 + std::min(k, n - 1), 0.0));
  }
  return scores;
}

std::size_t argmin(const std::vector<double>& v) {
  return static_cast<std::size_t>(std::min_element(v.begin(), v.end()) - v.begin());
}

Flat reference_krum(std::vector<Flat> w, const std::vector<double>& samples, std::int64_t f,
                    std::int64_t m, StrategyKind kind) {
  const std::size_t n = w.size();
  if (kind == StrategyKind::kKrum) return w[argmin(reference_scores(w, f))];
  if (kind == StrategyKind::kMultiKrum) {
    auto scores = reference_scores(w, f);
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](auto a, auto b) { return scores[a] < scores[b]; });
    Flat out(w[0].size(), 0.0);
    double total = 0;
    for (std::int64_t r = 0; r < m; ++r) {
      total += samples[order[r]];
      for (std::size_t j = 0; j < out.size(); ++j) out[j] += samples[order[r]] * w[order[r]][j];
    }
    for (double& x : out) x /= total;
    return out;
  }
  // Bulyan: theta rounds of Krum removing the winner, then per coordinate the beta values
  // closest to the median of the selected, averaged.
  const std::size_t theta = n - 2 * f, beta = theta - 2 * f;
  std::vector<Flat> selected;
  while (selected.size() < theta) {
    const std::size_t best = argmin(reference_scores(w, f));
    selected.push_back(w[best]);
    w.erase(w.begin() + static_cast<std::ptrdiff_t>(best));
  }
  Flat out(selected[0].size());
  for (std::size_t j = 0; j < out.size(); ++j) {
    std::vector<double> col;
    for (const auto& s : selected) col.push_back(s[j]);
    std::sort(col.begin(), col.end());
    const double med = theta % 2 ? col[theta / 2] : 0.5 * (col[theta / 2 - 1] + col[theta / 2]);
    std::sort(col.begin(), col.end(),
              [&](double a, double b) { return std::abs(a - med) < std::abs(b - med); });
    out[j] = std::accumulate(col.begin(), col.begin() + static_cast<std::ptrdiff_t>(beta), 0.0) / beta;
  }
  return out;
}

TEST(Krum, AgreesWithAStraightforwardImplementationOnRandomUpdates) {
  const NamedTensors global = fixtures::small_model(3.0f);
  std::mt19937 rng(7);
  int cases = 0;
  for (StrategyKind kind : {StrategyKind::kKrum, StrategyKind::kMultiKrum, StrategyKind::kBulyan}) {
    for (std::int64_t f : {1, 2}) {
      for (std::size_t extra : {0u, 2u, 5u}) {
        const std::size_t n = krum_config(kind, f).min_updates() + extra;
        for (UpdateKind ukind : {UpdateKind::kWeights, UpdateKind::kDelta}) {
          std::vector<NamedTensors> sites;
          std::vector<std::int64_t> samples;
          std::vector<Flat> absolute;
          std::vector<double> weights;
          for (std::size_t k = 0; k < n; ++k) {
            // Two clusters and a far outlier make the selection matter.
            const double spread = k % 3 == 0 ? 0.5 : 0.05;
            const double center = k + 1 == n ? 40.0 : 0.0;
            NamedTensors delta = fixtures::random_like(global, rng(), center, spread);
            NamedTensors abs;
            for (std::size_t i = 0; i < global.size(); ++i)
              abs.emplace_back(global[i].first, global[i].second.is_floating_point()
                                                    ? global[i].second + delta[i].second
                                                    : global[i].second.clone());
            sites.push_back(ukind == UpdateKind::kDelta ? delta : abs);
            samples.push_back(1 + static_cast<std::int64_t>(rng() % 50));
            absolute.push_back(flatten(abs));
            weights.push_back(static_cast<double>(samples.back()));
          }
          const std::int64_t m = kind == StrategyKind::kMultiKrum ? static_cast<std::int64_t>(n) - f : 0;
          const Outcome o = run(krum_config(kind, f, m), global, sites, samples, ukind);
          const Flat expected = reference_krum(absolute, weights, f, m, kind);
          const Flat actual = flatten(o.weights);
          ASSERT_EQ(actual.size(), expected.size());
          for (std::size_t j = 0; j < actual.size(); ++j)
            ASSERT_NEAR(actual[j], expected[j], 1e-5)
                << to_string(kind) << " f=" << f << " n=" << n << " coordinate " << j;
          for (const auto& site : o.report["selected"])
            EXPECT_NE(site.get<std::string>(), fixtures::site(n - 1)) << "the outlier";
          ++cases;
        }
      }
    }
  }
  EXPECT_EQ(cases, 36);
}

TEST(PairwiseDistances, GramProductsMatchThePairLoopForWeightsFarFromZero) {
  // Weights around 1000 that differ by ~1e-3: the case where ||a||^2 + ||b||^2 - 2ab would cancel
  // without the centring. Several tensors, one longer than a block, one of 1 element; some
  // updates given as deltas against a base.
  std::mt19937 rng(3);
  std::normal_distribution<float> noise(0.0f, 1e-3f);
  const std::vector<std::int64_t> numels = {20000, 1, 777};
  const std::size_t n = 9;
  std::vector<std::vector<std::vector<float>>> data(n), base(1);
  for (auto numel : numels) {
    std::vector<float> b(static_cast<std::size_t>(numel));
    for (auto& x : b) x = 1000.0f + noise(rng) * 1000.0f;
    base[0].push_back(b);
  }
  std::vector<std::vector<FlatPart>> parts(n);
  for (std::size_t u = 0; u < n; ++u) {
    const bool delta = u % 2 == 1;
    for (std::size_t t = 0; t < numels.size(); ++t) {
      std::vector<float> v(static_cast<std::size_t>(numels[t]));
      for (std::size_t j = 0; j < v.size(); ++j) v[j] = (delta ? 0.0f : base[0][t][j]) + noise(rng);
      data[u].push_back(std::move(v));
    }
    for (std::size_t t = 0; t < numels.size(); ++t)
      parts[u].push_back({data[u][t].data(), delta ? base[0][t].data() : nullptr});
  }
  const torch::Tensor fast = pairwise_squared_distances(parts, numels);
  const torch::Tensor slow = detail::pairwise_squared_distances_by_pairs(parts, numels);
  ASSERT_EQ(fast.sizes(), slow.sizes());
  for (std::size_t u = 0; u < n; ++u) {
    EXPECT_EQ(fast[u][u].item<double>(), 0.0);
    for (std::size_t v = 0; v < n; ++v) {
      const double a = fast[u][v].item<double>(), b = slow[u][v].item<double>();
      EXPECT_EQ(a, fast[v][u].item<double>());
      if (u != v) EXPECT_NEAR(a, b, 1e-6 * b) << u << "," << v;  // b ~ 2 * 20778 * 1e-6
    }
  }
}

TEST(PairwiseDistances, EqualUpdatesAreAtDistanceZero) {
  std::vector<float> a(5000, 123.25f);
  std::vector<std::vector<FlatPart>> parts(3, std::vector<FlatPart>{{a.data(), nullptr}});
  const torch::Tensor d = pairwise_squared_distances(parts, {5000});
  EXPECT_EQ(d.abs().max().item<double>(), 0.0);
}

}  // namespace
}  // namespace ppreid::agg
