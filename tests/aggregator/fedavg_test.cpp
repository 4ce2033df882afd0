#include "aggregator/fedavg.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "aggregator/fedprox.h"
#include "tests/aggregator/agg_fixtures.h"
#include "tests/support/errors.h"

namespace ppreid::agg {
namespace {

using ::testing::HasSubstr;
using fixtures::max_abs_diff;
using fixtures::config_of;
using fixtures::random_like;
using fixtures::small_model;
using fixtures::update_of;

// The "Done when" reference: keep every update, then the sample-weighted mean in
// float64 with LibTorch operators.
NamedTensors average_in_memory(const std::vector<ModelUpdate>& updates) {
  NamedTensors out;
  double total = 0;
  for (const auto& u : updates) total += static_cast<double>(u.samples);
  for (std::size_t i = 0; i < updates[0].tensors.size(); ++i) {
    const auto& [name, like] = updates[0].tensors[i];
    if (!like.is_floating_point()) {
      torch::Tensor m = like;
      for (const auto& u : updates) m = torch::maximum(m, u.tensors[i].second);
      out.emplace_back(name, m);
      continue;
    }
    torch::Tensor sum = torch::zeros(like.sizes(), torch::kFloat64);
    for (const auto& u : updates)
      sum += u.tensors[i].second.to(torch::kFloat64) * static_cast<double>(u.samples);
    out.emplace_back(name, (sum / total).to(like.scalar_type()));
  }
  return out;
}

TEST(FedAvg, ThreeUpdatesGiveTheHandComputedWeightedMean) {
  // Every element of site k's weights is v_k; samples 1, 2, 5:
  //   (1 * 1.0 + 2 * 2.0 + 5 * 4.0) / 8 = 25 / 8 = 3.125
  // Counters: max(12, 17, 15) = 17.
  NamedTensors global = small_model();
  FedAvg fedavg(config_of(StrategyKind::kFedAvg));
  fedavg.begin_round(global);
  const std::vector<std::pair<float, std::int64_t>> sites = {{1.0f, 1}, {2.0f, 2}, {4.0f, 5}};
  const std::vector<int64_t> counters = {12, 17, 15};
  for (std::size_t k = 0; k < sites.size(); ++k) {
    NamedTensors t;
    for (const auto& [name, like] : global)
      t.emplace_back(name, like.is_floating_point() ? torch::full_like(like, sites[k].first)
                                                    : torch::tensor(counters[k]));
    fedavg.add(update_of(fixtures::site(k), 0, sites[k].second, t));
  }
  EXPECT_EQ(fedavg.num_updates(), 3u);
  EXPECT_EQ(fedavg.total_samples(), 8);
  NamedTensors result = fedavg.finish();
  ASSERT_EQ(result.size(), global.size());
  for (std::size_t i = 0; i < result.size(); ++i) {
    EXPECT_EQ(result[i].first, global[i].first);
    EXPECT_EQ(result[i].second.scalar_type(), global[i].second.scalar_type());
    EXPECT_EQ(result[i].second.sizes(), global[i].second.sizes());
  }
  for (std::size_t i = 0; i < 4; ++i)
    EXPECT_TRUE(torch::allclose(result[i].second, torch::full_like(result[i].second, 3.125f), 0,
                                1e-6))
        << result[i].first;
  EXPECT_EQ(result[4].second.item<int64_t>(), 17);
}

TEST(FedAvg, StreamingEqualsAveragingInMemory) {
  NamedTensors global = small_model();
  std::vector<ModelUpdate> updates;
  const std::vector<std::int64_t> samples = {120, 75, 301};
  for (std::size_t k = 0; k < samples.size(); ++k)
    updates.push_back(update_of(fixtures::site(k), 0, samples[k],
                                random_like(global, 10 + k, 0.5, 2.0)));
  FedAvg fedavg(config_of(StrategyKind::kFedAvg));
  fedavg.begin_round(global);
  for (const auto& u : updates) fedavg.add(u);
  EXPECT_LT(max_abs_diff(fedavg.finish(), average_in_memory(updates)), 1e-6);
}

TEST(FedAvg, ResultDoesNotDependOnArrivalOrder) {
  NamedTensors global = small_model();
  std::vector<ModelUpdate> updates;
  for (int k = 0; k < 5; ++k)
    updates.push_back(update_of(fixtures::site(k), 0, 1 + 37 * k * k,
                                random_like(global, 100 + k, 0.0, 1000.0)));
  std::vector<int> order = {0, 1, 2, 3, 4};
  NamedTensors first;
  int permutations = 0;
  do {
    FedAvg fedavg(config_of(StrategyKind::kFedAvg));
    fedavg.begin_round(global);
    for (int k : order) fedavg.add(updates[k]);
    NamedTensors result = fedavg.finish();
    if (first.empty()) first = result;
    EXPECT_LT(max_abs_diff(result, first), 1e-6);
    ++permutations;
  } while (std::next_permutation(order.begin(), order.end()));
  EXPECT_EQ(permutations, 120);
}

TEST(FedAvg, DeltaUpdatesAreAddedToTheGlobalWeights) {
  NamedTensors global = random_like(small_model(), 5);
  NamedTensors w1 = random_like(global, 6), w2 = random_like(global, 7);
  NamedTensors d2;
  for (std::size_t i = 0; i < global.size(); ++i)
    d2.emplace_back(global[i].first, w2[i].second - global[i].second);
  FedAvg mixed(config_of(StrategyKind::kFedAvg)), plain(config_of(StrategyKind::kFedAvg));
  mixed.begin_round(global);
  plain.begin_round(global);
  mixed.add(update_of("a", 0, 3, w1));
  mixed.add(update_of("b", 0, 4, d2, UpdateKind::kDelta));
  plain.add(update_of("a", 0, 3, w1));
  plain.add(update_of("b", 0, 4, w2));
  EXPECT_LT(max_abs_diff(mixed.finish(), plain.finish()), 1e-6);
}

TEST(FedAvg, HoldsAtMostThreeModelSizesWhateverTheNumberOfUpdates) {
  NamedTensors global = random_like(small_model(), 1);
  std::size_t model_bytes = 0, counter_bytes = 0;
  for (const auto& [name, t] : global)
    (t.is_floating_point() ? model_bytes : counter_bytes) += t.numel() * t.element_size();
  FedAvg fedavg(config_of(StrategyKind::kFedAvg));
  fedavg.begin_round(global);
  for (int k = 1; k <= 10; ++k) {
    fedavg.add(update_of(fixtures::site(k), 0, 5, random_like(global, 50 + k)));
    // The float64 sum (2 model sizes) once two updates arrived, plus one waiting update (1).
    std::size_t expected = (k == 1 ? 0 : 2 * model_bytes) + (k % 2 ? model_bytes : 0);
    EXPECT_EQ(fedavg.held_bytes(), expected + counter_bytes) << k;
  }
  fedavg.finish();
  EXPECT_EQ(fedavg.held_bytes(), 0u);
}

TEST(FedAvg, RefusesMisuse) {
  NamedTensors global = small_model();
  FedAvg fedavg(config_of(StrategyKind::kFedAvg));
  ModelUpdate u = update_of("a", 0, 1, small_model());
  EXPECT_THAT(testing::error_of([&] { fedavg.add(u); }), HasSubstr("begin_round"));
  fedavg.begin_round(global);
  EXPECT_THAT(testing::error_of([&] { fedavg.finish(); }), HasSubstr("no update"));
  std::reverse(u.tensors.begin(), u.tensors.end());
  EXPECT_THAT(testing::error_of([&] { fedavg.add(u); }), HasSubstr("UpdateValidator::admit"));
  fedavg.abandon();
  EXPECT_EQ(fedavg.num_updates(), 0u);
}

TEST(FedProx, AggregatesLikeFedAvgAndSendsMu) {
  StrategyConfig c = config_of(StrategyKind::kFedProx);
  c.mu = 0.05;
  FedProx prox(c);
  FedAvg avg(config_of(StrategyKind::kFedAvg));
  EXPECT_EQ(prox.task_settings(), (nlohmann::json{{"proximal_mu", 0.05}}));
  EXPECT_EQ(avg.task_settings(), nlohmann::json::object());
  NamedTensors global = small_model();
  prox.begin_round(global);
  avg.begin_round(global);
  for (int k = 0; k < 3; ++k) {
    ModelUpdate u = update_of(fixtures::site(k), 0, 10 + k, random_like(global, 70 + k));
    prox.add(u);
    avg.add(u);
  }
  EXPECT_EQ(max_abs_diff(prox.finish(), avg.finish()), 0.0);
}

}  // namespace
}  // namespace ppreid::agg
