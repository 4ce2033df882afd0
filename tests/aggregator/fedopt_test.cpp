#include "aggregator/fedopt.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/aggregator/agg_fixtures.h"
#include "tests/support/errors.h"

namespace ppreid::agg {
namespace {

using ::testing::HasSubstr;
using fixtures::random_like;
using fixtures::small_model;
using fixtures::update_of;

StrategyConfig fedopt_config(StrategyKind kind) {
  StrategyConfig c;
  c.kind = kind;
  c.server_lr = 0.1;
  c.beta1 = 0.9;
  c.beta2 = 0.99;
  c.tau = 0.5;  // v starts at 0.25, which makes Yogi's sign(v - delta^2) take all three values
  return c;
}

// x = [1, 2, -0.5]; site 1 sends [2, 2, 0] with 1 sample, site 2 [0, 4, -1] with 3 samples.
// Weighted mean [0.5, 3.5, -0.75]; delta = mean - x = [-0.5, 1.5, -0.25]; delta^2 =
// [0.25, 2.25, 0.0625]. m = 0.1 delta = [-0.05, 0.15, -0.025].
//   Adam: v = 0.99 * 0.25 + 0.01 delta^2        = [0.25, 0.27, 0.248125]
//   Yogi: v = 0.25 - 0.01 delta^2 sign(0.25 - delta^2) = [0.25 (sign 0), 0.2725, 0.249375]
// x' = x + 0.1 m / (sqrt(v) + 0.5):
//   Adam: [1 - 0.005 / 1, 2 + 0.015 / 1.0196152, -0.5 - 0.0025 / 0.9981215]
//       = [0.995, 2.0147114, -0.5025047]
//   Yogi: [0.995, 2 + 0.015 / 1.0220153, -0.5 - 0.0025 / 0.9993746]
//       = [0.995, 2.0146769, -0.5025016]
// The BatchNorm statistic takes the plain weighted mean, the counter the maximum.
NamedTensors one_step(FedOpt& opt) {
  NamedTensors global = {{"w", torch::tensor({1.0f, 2.0f, -0.5f})},
                         {"bn.running_var", torch::tensor({1.0f, 1.0f})},
                         {"bn.num_batches_tracked", torch::tensor(int64_t{4})}};
  opt.begin_round(global);
  opt.add(update_of("s1", 0, 1,
                    {{"w", torch::tensor({2.0f, 2.0f, 0.0f})},
                     {"bn.running_var", torch::tensor({2.0f, 4.0f})},
                     {"bn.num_batches_tracked", torch::tensor(int64_t{9})}}));
  opt.add(update_of("s2", 0, 3,
                    {{"w", torch::tensor({0.0f, 4.0f, -1.0f})},
                     {"bn.running_var", torch::tensor({6.0f, 8.0f})},
                     {"bn.num_batches_tracked", torch::tensor(int64_t{7})}}));
  return opt.finish();
}

TEST(FedAdam, OneStepMatchesHandComputedValues) {
  FedOpt adam(fedopt_config(StrategyKind::kFedAdam));
  NamedTensors r = one_step(adam);
  EXPECT_TRUE(torch::allclose(r[0].second, torch::tensor({0.995f, 2.0147114f, -0.5025047f}), 0,
                              1e-6))
      << r[0].second;
  EXPECT_TRUE(torch::allclose(r[1].second, torch::tensor({5.0f, 7.0f})));  // (2+18)/4, (4+24)/4
  EXPECT_EQ(r[2].second.item<int64_t>(), 9);
  EXPECT_EQ(adam.step(), 1);
  StrategyState s = adam.state();
  ASSERT_EQ(s.tensors.size(), 2u);  // m/w and v/w: BatchNorm statistics are not optimized
  EXPECT_EQ(s.tensors[0].first, "m/w");
  EXPECT_TRUE(torch::allclose(s.tensors[0].second, torch::tensor({-0.05f, 0.15f, -0.025f})));
  EXPECT_TRUE(torch::allclose(s.tensors[1].second, torch::tensor({0.25f, 0.27f, 0.248125f})));
  EXPECT_EQ(s.meta.at("step"), 1);
}

TEST(FedYogi, OneStepMatchesHandComputedValues) {
  FedOpt yogi(fedopt_config(StrategyKind::kFedYogi));
  NamedTensors r = one_step(yogi);
  EXPECT_TRUE(torch::allclose(r[0].second, torch::tensor({0.995f, 2.0146769f, -0.5025016f}), 0,
                              1e-6))
      << r[0].second;
  EXPECT_TRUE(torch::allclose(yogi.state().tensors[1].second,
                              torch::tensor({0.25f, 0.2725f, 0.249375f})));
}

TEST(FedAdam, RestoredStateContinuesExactlyLikeTheUninterruptedRun) {
  NamedTensors global = random_like(small_model(), 2);
  auto round = [&](FedOpt& opt, const NamedTensors& g, int r) {
    opt.begin_round(g);
    for (int k = 0; k < 3; ++k)
      opt.add(update_of(fixtures::site(k), r, 5 + k, random_like(g, 100 * r + k, 0.0, 0.3)));
    return opt.finish();
  };
  for (StrategyKind kind : {StrategyKind::kFedAdam, StrategyKind::kFedYogi}) {
    FedOpt original(fedopt_config(kind));
    NamedTensors g1 = round(original, global, 1);
    StrategyState saved = original.state();
    for (auto& [name, t] : saved.tensors) t = t.clone();  // what a checkpoint round trip gives
    NamedTensors g2 = round(original, g1, 2);

    FedOpt restarted(fedopt_config(kind));
    restarted.restore(saved, g1);
    EXPECT_EQ(restarted.step(), 1);
    NamedTensors again = round(restarted, g1, 2);
    for (std::size_t i = 0; i < g2.size(); ++i)
      EXPECT_TRUE(torch::equal(g2[i].second, again[i].second)) << g2[i].first;
  }
}

TEST(FedAdam, RestoreNamesWhatDoesNotMatch) {
  NamedTensors global = small_model();
  FedOpt adam(fedopt_config(StrategyKind::kFedAdam));
  adam.begin_round(global);
  adam.add(update_of("a", 0, 1, random_like(global, 1)));
  adam.finish();
  StrategyState state = adam.state();

  FedOpt yogi(fedopt_config(StrategyKind::kFedYogi));
  EXPECT_THAT(testing::error_of([&] { yogi.restore(state, global); }),
              HasSubstr("written by strategy 'fedadam' but the config says 'fedyogi'"));

  FedOpt other(fedopt_config(StrategyKind::kFedAdam));
  StrategyState missing = state;
  missing.tensors.pop_back();
  EXPECT_THAT(testing::error_of([&] { other.restore(missing, global); }),
              HasSubstr("missing 'v/neck.bias'"));
  StrategyState negative = state;
  negative.tensors.back().second = -negative.tensors.back().second;
  EXPECT_THAT(testing::error_of([&] { other.restore(negative, global); }), HasSubstr("negative"));
  StrategyState no_step = state;
  no_step.meta = nlohmann::json::object();
  EXPECT_THAT(testing::error_of([&] { other.restore(no_step, global); }), HasSubstr("step"));

  NamedTensors changed = small_model();
  changed[0].second = torch::zeros({4, 3});
  EXPECT_THAT(testing::error_of([&] { other.restore(state, changed); }),
              HasSubstr("'m/backbone.conv.weight' has shape [2,3], expected [4,3]"));
}

}  // namespace
}  // namespace ppreid::agg
