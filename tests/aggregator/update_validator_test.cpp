#include "aggregator/update_validator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>

#include "aggregator/fedavg.h"
#include "core/util/config.h"
#include "tests/aggregator/agg_fixtures.h"
#include "tests/support/errors.h"

namespace ppreid::agg {
namespace {

using ::testing::HasSubstr;
using fixtures::clone;
using fixtures::small_model;
using fixtures::update_of;

// Limits under which the validator itself refuses updates above a fixed bound.
ValidationLimits refusing(double max_delta_norm, std::int64_t max_samples) {
  ValidationLimits limits;
  limits.norm_bound = NormBound::kAbsolute;
  limits.max_delta_norm = max_delta_norm;
  limits.over_bound = OverBound::kRefuse;
  limits.max_samples = max_samples;
  return limits;
}

class UpdateValidatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    global = small_model();
    validator.begin_round(4, global);
  }
  ModelUpdate valid(const std::string& site, float shift = 0.1f) {
    NamedTensors t = clone(global);
    for (auto& [name, tensor] : t)
      if (tensor.is_floating_point()) tensor.add_(shift);
    return update_of(site, 4, 100, std::move(t));
  }
  RejectReason reason_of(ModelUpdate u) {
    auto r = validator.admit(u);
    EXPECT_TRUE(r.has_value()) << "expected a rejection for site " << u.site;
    return r ? r->reason : RejectReason::kStaleRound;
  }

  NamedTensors global;
  UpdateValidator validator{refusing(/*max_delta_norm=*/1.0, /*max_samples=*/1'000'000)};
};

TEST_F(UpdateValidatorTest, AcceptsAValidUpdateAndCountsItsSite) {
  ModelUpdate u = valid("a");
  EXPECT_FALSE(validator.admit(u).has_value());
  EXPECT_EQ(validator.counted_sites(), std::set<std::string>{"a"});
}

TEST_F(UpdateValidatorTest, ReasonsHaveStableNames) {
  std::vector<std::string> names;
  for (RejectReason r : all_reject_reasons()) names.emplace_back(to_string(r));
  EXPECT_EQ(names, (std::vector<std::string>{"stale_round", "future_round", "unexpected_site",
                                             "duplicate_site", "bad_sample_count",
                                             "structure_mismatch", "non_finite",
                                             "norm_too_large", "too_many_refusals",
                                             "negative_variance"}));
}

TEST_F(UpdateValidatorTest, RejectsStaleAndFutureRounds) {
  ModelUpdate late = valid("a");
  late.round = 3;
  auto r = validator.admit(late);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->reason, RejectReason::kStaleRound);
  EXPECT_EQ(r->site, "a");
  EXPECT_THAT(r->detail, HasSubstr("round 3"));
  ModelUpdate early = valid("a");
  early.round = 5;
  EXPECT_EQ(reason_of(early), RejectReason::kFutureRound);
  EXPECT_TRUE(validator.counted_sites().empty());
}

TEST_F(UpdateValidatorTest, RejectsADuplicateSiteButNotAfterARejectedAttempt) {
  ModelUpdate nan = valid("a");
  nan.tensors[1].second[0] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(reason_of(nan), RejectReason::kNonFinite);
  ModelUpdate first = valid("a");
  EXPECT_FALSE(validator.admit(first).has_value());  // the rejected attempt did not count
  EXPECT_EQ(reason_of(valid("a")), RejectReason::kDuplicateSite);
  validator.begin_round(5, global);  // a new round forgets the counted sites
  ModelUpdate next = valid("a");
  next.round = 5;
  EXPECT_FALSE(validator.admit(next).has_value());
}

TEST_F(UpdateValidatorTest, RejectsSitesNotAskedInTheRound) {
  validator.begin_round(4, global, {"a", "b"});
  EXPECT_EQ(reason_of(valid("c")), RejectReason::kUnexpectedSite);
  ModelUpdate b = valid("b");
  EXPECT_FALSE(validator.admit(b).has_value());
}

TEST_F(UpdateValidatorTest, RejectsZeroNegativeAndAbsurdSampleCounts) {
  for (std::int64_t samples : {std::int64_t{0}, std::int64_t{-5}, std::int64_t{1'000'001}}) {
    ModelUpdate u = valid("a");
    u.samples = samples;
    EXPECT_EQ(reason_of(u), RejectReason::kBadSampleCount) << samples;
  }
}

TEST_F(UpdateValidatorTest, RejectsMismatchedNamesShapesAndDtypes) {
  ModelUpdate missing = valid("a");
  missing.tensors.pop_back();
  auto r = validator.admit(missing);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->reason, RejectReason::kStructureMismatch);
  EXPECT_THAT(r->detail, HasSubstr("missing 'neck.num_batches_tracked'"));

  ModelUpdate renamed = valid("a");
  renamed.tensors[0].first = "backbone.conv.weights";
  r = validator.admit(renamed);
  ASSERT_TRUE(r);
  EXPECT_THAT(r->detail, HasSubstr("unexpected 'backbone.conv.weights'"));

  ModelUpdate reshaped = valid("a");
  reshaped.tensors[0].second = reshaped.tensors[0].second.view({3, 2});
  r = validator.admit(reshaped);
  ASSERT_TRUE(r);
  EXPECT_THAT(r->detail, HasSubstr("has shape [3,2], expected [2,3]"));

  ModelUpdate retyped = valid("a");
  retyped.tensors[1].second = retyped.tensors[1].second.to(torch::kFloat64);
  r = validator.admit(retyped);
  ASSERT_TRUE(r);
  EXPECT_THAT(r->detail, HasSubstr("'neck.bias' has dtype Double, expected Float"));

  ModelUpdate doubled = valid("a");
  doubled.tensors.push_back(doubled.tensors[0]);
  EXPECT_EQ(reason_of(doubled), RejectReason::kStructureMismatch);
}

TEST_F(UpdateValidatorTest, RejectsNaNAndInfAnywhere) {
  for (std::size_t i = 0; i < 4; ++i) {
    for (float bad : {std::numeric_limits<float>::quiet_NaN(),
                      -std::numeric_limits<float>::infinity()}) {
      ModelUpdate u = valid("a");
      u.tensors[i].second.view(-1)[0] = bad;
      auto r = validator.admit(u);
      ASSERT_TRUE(r) << i;
      EXPECT_EQ(r->reason, RejectReason::kNonFinite);
      EXPECT_THAT(r->detail, HasSubstr(u.tensors[i].first));
    }
  }
}

TEST_F(UpdateValidatorTest, NormBoundAppliesToTheDifferenceFromTheGlobal) {
  // 15 floating-point elements (the counter does not count) each moved by 0.25:
  // norm sqrt(15 * 0.0625) = 0.968 <= 1.
  ModelUpdate small = valid("a", 0.25f);
  EXPECT_NEAR(validator.delta_norm(small), std::sqrt(15 * 0.0625), 1e-6);
  EXPECT_FALSE(validator.check(small).has_value());
  // Moved by 0.3: sqrt(15 * 0.09) = 1.1619 > 1.
  ModelUpdate big = valid("b", 0.3f);
  auto r = validator.admit(big);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->reason, RejectReason::kNormTooLarge);
  EXPECT_THAT(r->detail, HasSubstr("1.1619"));
  // The same values sent as a delta are measured as the delta itself.
  NamedTensors delta;
  for (const auto& [name, t] : global)
    delta.emplace_back(name, t.is_floating_point() ? torch::full_like(t, 0.25f) : torch::zeros_like(t));
  ModelUpdate d = update_of("c", 4, 10, delta, UpdateKind::kDelta);
  EXPECT_NEAR(validator.delta_norm(d), std::sqrt(15 * 0.0625), 1e-6);
  EXPECT_FALSE(validator.admit(d).has_value());
}

TEST_F(UpdateValidatorTest, RefusesANegativeVarianceAsWeightsOrAsADelta) {
  ModelUpdate u = valid("a");
  for (auto& [name, t] : u.tensors)
    if (name.ends_with("running_var")) t = torch::tensor({1.0f, -0.5f, 3.0f});
  EXPECT_EQ(reason_of(u), RejectReason::kNegativeVariance);
  // As a delta: global running_var {1, 2, 3} + {0, -2.5, 0} has -0.5 in it.
  ModelUpdate d = valid("b");
  d.kind = UpdateKind::kDelta;
  for (auto& [name, t] : d.tensors)
    t = name.ends_with("running_var") ? torch::tensor({0.0f, -2.5f, 0.0f})
                                      : (t.is_floating_point() ? torch::zeros_like(t) : t);
  auto r = validator.admit(d);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->reason, RejectReason::kNegativeVariance);
  EXPECT_THAT(r->detail, HasSubstr("running_var"));
  EXPECT_THAT(r->detail, HasSubstr("-0.5"));
}

TEST_F(UpdateValidatorTest, AdmitPutsTensorsInTheGlobalOrder) {
  ModelUpdate u = valid("a");
  std::reverse(u.tensors.begin(), u.tensors.end());
  EXPECT_FALSE(validator.admit(u).has_value());
  for (std::size_t i = 0; i < global.size(); ++i) EXPECT_EQ(u.tensors[i].first, global[i].first);
}

TEST_F(UpdateValidatorTest, RefusesBadLimitsAndUseOutsideARound) {
  EXPECT_THAT(testing::error_of([] { UpdateValidator(refusing(0.0, 10)); }),
              HasSubstr("norm bound"));
  UpdateValidator fresh;
  ModelUpdate u = valid("a");
  EXPECT_THAT(testing::error_of([&] { fresh.admit(u); }), HasSubstr("begin_round"));
}

TEST(ValidationLimits, ReadsTheValidationSectionOfAConfig) {
  auto read = [](const std::string& yaml) {
    auto reader = util::ConfigReader::from_string(yaml, "aggregator.yaml");
    auto section = reader.section("validation");
    return ValidationLimits::read(section);
  };
  ValidationLimits limits = read("validation:\n  max_delta_norm: 50\n  max_samples: 20000\n");
  EXPECT_EQ(limits.max_delta_norm, 50.0);
  EXPECT_EQ(limits.max_samples, 20000);
  EXPECT_FALSE(read("validation: {}\n").max_delta_norm.has_value());
  EXPECT_THAT(testing::error_of([&] { read("validation:\n  max_delta_norm: 0\n"); }),
              HasSubstr("key 'validation.max_delta_norm': value 0 is out of range"));
  EXPECT_THAT(testing::error_of([&] { read("validation:\n  max_sample: 5\n"); }),
              HasSubstr("unknown key 'validation.max_sample'"));
}

// The acceptance check: NaN, oversized, mismatched, duplicate and stale updates are
// rejected with the right reason and never touch the aggregate.
TEST_F(UpdateValidatorTest, RejectedUpdatesNeverTouchTheAggregate) {
  FedAvg with_rejects({}), clean({});
  with_rejects.begin_round(global);
  clean.begin_round(global);
  ModelUpdate a = valid("a", 0.1f), c = valid("c", -0.2f);
  a.samples = 30;
  c.samples = 70;

  std::vector<ModelUpdate> stream;
  stream.push_back(a);
  ModelUpdate nan = valid("b");
  nan.tensors[0].second[1][2] = std::numeric_limits<float>::quiet_NaN();
  stream.push_back(nan);
  stream.push_back(valid("d", 5.0f));  // norm sqrt(15 * 25) = 19.4 > 1
  ModelUpdate mismatched = valid("e");
  mismatched.tensors[2].second = torch::zeros({4});
  stream.push_back(mismatched);
  stream.push_back(valid("a", 0.5f));  // duplicate of a
  ModelUpdate stale = valid("f");
  stale.round = 2;
  stream.push_back(stale);
  stream.push_back(c);

  std::vector<std::string> reasons;
  for (auto& u : stream) {
    if (auto r = validator.admit(u)) {
      reasons.emplace_back(to_string(r->reason));
    } else {
      with_rejects.add(u);
    }
  }
  EXPECT_EQ(reasons, (std::vector<std::string>{"non_finite", "norm_too_large",
                                               "structure_mismatch", "duplicate_site",
                                               "stale_round"}));
  EXPECT_EQ(with_rejects.num_updates(), 2u);
  clean.add(a);
  clean.add(c);
  NamedTensors got = with_rejects.finish(), want = clean.finish();
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(torch::equal(got[i].second, want[i].second));
}

}  // namespace
}  // namespace ppreid::agg
