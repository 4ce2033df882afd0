#include "aggregator/update_guard.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "aggregator/fedavg.h"
#include "core/util/config.h"
#include "tests/aggregator/agg_fixtures.h"
#include "tests/support/errors.h"

namespace ppreid::agg {
namespace {

using fixtures::update_of;
using testing::error_of;
using ::testing::HasSubstr;

NamedTensors one_value(float v) { return {{"w", torch::tensor({v})}, {"n", torch::tensor(std::int64_t{3})}}; }

// An update of one value, admitted by a validator so that its delta_norm is set.
ModelUpdate admitted(UpdateValidator& validator, const std::string& site, float value,
                     std::int64_t samples) {
  ModelUpdate u = update_of(site, 1, samples, one_value(value));
  EXPECT_FALSE(validator.admit(u)) << site;
  return u;
}

TEST(UpdateGuard, RelativeBoundIsTheMultipleOfTheLowerMedian) {
  struct Case {
    std::vector<double> norms;
    double multiple, bound;
  };
  const std::vector<Case> cases = {
      {{1, 2, 3, 100}, 3, 6},  // lower median of four: the second smallest
      {{5}, 3, 15},            // alone: its own norm
      {{1000, 4}, 3, 12},      // two: the smaller
      {{2, 9, 1}, 2, 4},
  };
  for (const auto& c : cases) EXPECT_DOUBLE_EQ(relative_norm_bound(c.norms, c.multiple), c.bound);
}

TEST(UpdateGuard, ShareCapLowersTheLargestCountsToTheWaterLevel) {
  struct Case {
    std::vector<std::int64_t> counts;
    double share;
    std::vector<std::int64_t> expected;
  };
  const std::vector<Case> cases = {
      {{100, 100, 10000}, 0.5, {100, 100, 200}},         // 200 / 400 = 0.5
      {{10, 20, 30}, 0.5, {10, 20, 30}},                 // 30 / 60: at the cap already
      {{10, 20, 70}, 0.5, {10, 20, 30}},
      {{1000000, 50, 50, 50, 50, 50, 50}, 0.5, {300, 50, 50, 50, 50, 50, 50}},
      {{1000000, 1000000, 50, 50}, 0.3, {75, 75, 50, 50}},  // c = 0.3 (2c + 100): 75 / 250
      {{10, 20, 30}, 0.2, {10, 10, 10}},                 // 3 x 0.2 < 1: equal, the smallest
      {{7, 9}, 1.0, {7, 9}},                             // share 1: no cap
  };
  for (const auto& c : cases)
    EXPECT_EQ(cap_by_share(c.counts, c.share), c.expected) << c.share;
}

TEST(UpdateGuard, DefaultsClipABoostedUpdateAndCapALyingCount) {
  const ValidationLimits defaults;
  ASSERT_EQ(defaults.norm_bound, NormBound::kRelative);
  ASSERT_EQ(defaults.over_bound, OverBound::kClip);
  UpdateValidator validator(defaults);
  UpdateGuard guard(defaults);
  const NamedTensors global = one_value(0);
  validator.begin_round(1, global);
  guard.begin_round(global);
  ASSERT_TRUE(guard.holds());
  // Honest changes 1, 1.5, 2 (10 images each, as their Hellos say); the attacker moves 1e6 and
  // claims 1e7 images after declaring 10.
  EXPECT_FALSE(guard.admit(admitted(validator, "a", 1.0f, 10), 10));
  EXPECT_FALSE(guard.admit(admitted(validator, "b", 1.5f, 10), 10));
  EXPECT_FALSE(guard.admit(admitted(validator, "c", 2.0f, 10), 10));
  EXPECT_FALSE(guard.admit(admitted(validator, "evil", 1e6f, 10'000'000), 10));
  std::vector<ModelUpdate> out = guard.close();
  ASSERT_EQ(out.size(), 4u);
  // Lower median of {1, 1.5, 2, 1e6} is 1.5: bound 4.5; the attacker is clipped to 4.5.
  EXPECT_DOUBLE_EQ(*guard.bound(), 4.5);
  EXPECT_FLOAT_EQ(out[3].tensors[0].second.item<float>(), 4.5f);
  EXPECT_EQ(out[3].tensors[1].second.item<std::int64_t>(), 3) << "counters are not scaled";
  EXPECT_EQ(out[3].samples, 10) << "capped by its Hello";
  const nlohmann::json record = guard.record();
  EXPECT_DOUBLE_EQ(record["clipped"]["evil"].get<double>(), 1e6);
  EXPECT_EQ(record["capped"]["evil"], nlohmann::json({{"claimed", 10'000'000}, {"counted", 10}, {"by", "hello"}}));
  EXPECT_EQ(record["clipped"].size(), 1u) << "honest updates are untouched";

  FedAvg fedavg(StrategyConfig{});
  fedavg.begin_round(global);
  for (const auto& u : out) fedavg.add(u);
  EXPECT_FLOAT_EQ(fedavg.finish()[0].second.item<float>(), (1.0f + 1.5f + 2.0f + 4.5f) / 4);
}

TEST(UpdateGuard, WithoutAHelloTheShareCapStillBoundsALiar) {
  UpdateValidator validator;
  UpdateGuard guard;
  validator.begin_round(1, one_value(0));
  guard.begin_round(one_value(0));
  for (const char* s : {"a", "b", "c"}) guard.admit(admitted(validator, s, 1.0f, 100), 100);
  guard.admit(admitted(validator, "liar", 1.0f, 50'000'000), std::nullopt);
  std::vector<ModelUpdate> out = guard.close();
  EXPECT_EQ(out[3].samples, 300) << "half of the round's total: 300 / 600";
  EXPECT_EQ(guard.record()["capped"]["liar"]["by"], "share");
}

TEST(UpdateGuard, RefuseModeLeavesOverBoundUpdatesOutAndAbsoluteClipsAtOnce) {
  ValidationLimits refuse;
  refuse.over_bound = OverBound::kRefuse;
  UpdateValidator validator(refuse);
  UpdateGuard guard(refuse);
  validator.begin_round(1, one_value(0));
  guard.begin_round(one_value(0));
  for (auto [s, v] : {std::pair{"a", 1.0f}, {"b", 2.0f}, {"c", 100.0f}})
    guard.admit(admitted(validator, s, v, 10), 10);
  std::vector<ModelUpdate> out = guard.close();
  ASSERT_EQ(out.size(), 2u);
  ASSERT_EQ(guard.refusals().size(), 1u);
  EXPECT_EQ(guard.refusals()[0].site, "c");
  EXPECT_EQ(guard.refusals()[0].reason, RejectReason::kNormTooLarge);

  ValidationLimits absolute;
  absolute.norm_bound = NormBound::kAbsolute;
  absolute.max_delta_norm = 2.0;
  absolute.max_sample_share = 1.0;
  UpdateValidator v2(absolute);
  UpdateGuard streaming(absolute);
  v2.begin_round(1, one_value(0));
  streaming.begin_round(one_value(0));
  EXPECT_FALSE(streaming.holds());
  auto now = streaming.admit(admitted(v2, "a", -8.0f, 10), 10);
  ASSERT_TRUE(now);
  EXPECT_FLOAT_EQ(now->tensors[0].second.item<float>(), -2.0f);
  EXPECT_DOUBLE_EQ(now->delta_norm, 2.0);
}

TEST(UpdateGuard, ClippingADeltaOrWeightsUpdateScalesOnlyTheChange) {
  NamedTensors global = {{"w", torch::tensor({10.0f, 20.0f})}};
  ModelUpdate weights = update_of("a", 1, 1, {{"w", torch::tensor({13.0f, 24.0f})}});
  scale_change(weights, global, 0.5);
  EXPECT_TRUE(torch::allclose(weights.tensors[0].second, torch::tensor({11.5f, 22.0f})));
  ModelUpdate delta = update_of("a", 1, 1, {{"w", torch::tensor({3.0f, 4.0f})}}, UpdateKind::kDelta);
  scale_change(delta, global, 0.5);
  EXPECT_TRUE(torch::allclose(delta.tensors[0].second, torch::tensor({1.5f, 2.0f})));
}

TEST(UpdateGuard, ConfigNamesWhatIsWrong) {
  auto read = [](const std::string& yaml) {
    auto reader = util::ConfigReader::from_string(yaml, "agg.yaml");
    return ValidationLimits::read(reader);
  };
  EXPECT_EQ(read("max_samples: 5\n").norm_bound, NormBound::kRelative);
  const ValidationLimits legacy = read("max_delta_norm: 50\n");
  EXPECT_EQ(legacy.norm_bound, NormBound::kAbsolute);
  EXPECT_EQ(*legacy.max_delta_norm, 50);
  EXPECT_EQ(read("norm_bound: off\nmax_sample_share: 1\n").max_sample_share, 1.0);
  EXPECT_THAT(error_of([&] { read("norm_bound: absolute\n"); }),
              HasSubstr("max_delta_norm is not set"));
  EXPECT_THAT(error_of([&] { read("norm_bound: relative\nmax_delta_norm: 3\n"); }),
              HasSubstr("applies to norm_bound: absolute"));
  EXPECT_THAT(error_of([&] { read("norm_bound: off\nnorm_multiple: 3\n"); }),
              HasSubstr("applies to norm_bound: relative"));
  EXPECT_THAT(error_of([&] { read("max_sample_share: 0\n"); }), HasSubstr("max_sample_share"));
  EXPECT_THAT(error_of([&] { read("over_bound: drop\n"); }), HasSubstr("over_bound"));
  EXPECT_THAT(error_of([&] { read("norm_multiple: 0.5\n"); }), HasSubstr("norm_multiple"));
}

}  // namespace
}  // namespace ppreid::agg
