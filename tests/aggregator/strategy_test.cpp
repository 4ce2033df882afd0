#include "aggregator/strategy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/util/config.h"
#include "tests/support/errors.h"

namespace ppreid::agg {
namespace {

using ::testing::HasSubstr;

StrategyConfig read_yaml(const std::string& yaml) {
  auto reader = util::ConfigReader::from_string(yaml, "aggregator.yaml");
  auto section = reader.section("strategy");
  return StrategyConfig::read(section);
}

TEST(StrategyFactory, MakesEveryStrategyByName) {
  for (const char* name : {"fedavg", "fedprox", "fedadam", "fedyogi", "median", "trimmed_mean"}) {
    StrategyConfig c;
    c.kind = strategy_kind_from_string(name);
    auto strategy = make_strategy(c);
    EXPECT_EQ(to_string(strategy->kind()), name);
    EXPECT_EQ(strategy->state().kind, c.kind);
  }
  EXPECT_THAT(testing::error_of([] { strategy_kind_from_string("fedsgd"); }),
              HasSubstr("known: fedavg, fedprox, fedadam, fedyogi, median, trimmed_mean"));
}

TEST(StrategyConfig, ReadsTheStrategySectionOfAConfig) {
  StrategyConfig c = read_yaml("strategy:\n  name: fedyogi\n  server_lr: 0.05\n  tau: 0.01\n");
  EXPECT_EQ(c.kind, StrategyKind::kFedYogi);
  EXPECT_EQ(c.server_lr, 0.05);
  EXPECT_EQ(c.tau, 0.01);
  EXPECT_EQ(c.beta1, 0.9);
  EXPECT_EQ(c.to_json(), (nlohmann::json{{"name", "fedyogi"}, {"server_lr", 0.05}, {"beta1", 0.9},
                                         {"beta2", 0.99}, {"tau", 0.01}}));
  EXPECT_EQ(StrategyConfig::from_json(c.to_json(), "x").to_json(), c.to_json());
  EXPECT_EQ(read_yaml("strategy:\n  name: fedprox\n  mu: 0.1\n").mu, 0.1);
  EXPECT_EQ(read_yaml("other: 1\n").kind, StrategyKind::kFedAvg);
}

TEST(StrategyConfig, RefusesUnknownOutOfRangeAndInapplicableKeys) {
  EXPECT_THAT(testing::error_of([] { read_yaml("strategy:\n  name: geomed\n"); }),
              HasSubstr("aggregator.yaml:2: key 'strategy.name': 'geomed' is not one of"));
  EXPECT_THAT(testing::error_of([] { read_yaml("strategy:\n  name: fedavg\n  mu: 0.1\n"); }),
              HasSubstr("key 'strategy.mu': does not apply to strategy 'fedavg'"));
  EXPECT_THAT(testing::error_of([] { read_yaml("strategy:\n  name: fedadam\n  beta2: 1.0\n"); }),
              HasSubstr("beta2 = 1 is out of range"));
  EXPECT_THAT(
      testing::error_of([] { read_yaml("strategy:\n  name: trimmed_mean\n  trim_fraction: 0.5\n"); }),
      HasSubstr("trim_fraction"));
  EXPECT_THAT(testing::error_of([] { read_yaml("strategy:\n  name: median\n  tirm: 0.1\n"); }),
              HasSubstr("unknown key 'strategy.tirm'"));
  StrategyConfig bad;
  bad.kind = StrategyKind::kFedAdam;
  bad.tau = 0;
  EXPECT_THAT(testing::error_of([&] { make_strategy(bad); }), HasSubstr("tau"));
}

TEST(Strategy, StatelessStrategiesRestoreOnlyTheirOwnKind) {
  StrategyConfig c;
  auto fedavg = make_strategy(c);
  fedavg->restore(fedavg->state(), {});
  StrategyState median_state;
  median_state.kind = StrategyKind::kMedian;
  EXPECT_THAT(testing::error_of([&] { fedavg->restore(median_state, {}); }),
              HasSubstr("written by strategy 'median' but the config says 'fedavg'"));
}

}  // namespace
}  // namespace ppreid::agg
