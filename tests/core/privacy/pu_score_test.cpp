#include "core/privacy/pu_score.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <ostream>
#include <string>

#include "core/util/error.h"
#include "tests/support/errors.h"

namespace ppreid::privacy {
namespace {

using ::testing::HasSubstr;
using testing::error_of;

struct PuCase {
  std::string name;
  double s_u, s_p, i_u, i_p;
  double expected;
};

void PrintTo(const PuCase& c, std::ostream* os) { *os << c.name; }

class PuScoreValues : public ::testing::TestWithParam<PuCase> {};

TEST_P(PuScoreValues, ByHand) {
  const PuCase& c = GetParam();
  EXPECT_NEAR(pu_score(c.s_u, c.s_p, c.i_u, c.i_p), c.expected, 1e-15);
}

INSTANTIATE_TEST_SUITE_P(
    Table, PuScoreValues,
    ::testing::Values(
        // 2 / (1/0.6 + 1/0.7) = 2 / (5/3 + 10/7) = 42/65 = 0.646153...
        PuCase{"EqualWeights", 0.6, 0.3, 1, 1, 42.0 / 65},
        // Equal utility and 1 - privacy: the harmonic mean is that value.
        PuCase{"Symmetric", 0.8, 0.2, 1, 1, 0.8},
        // 2 / (0.5/0.8 + 1.5/0.5) = 2 / (5/8 + 3) = 16/29.
        PuCase{"PrivacyWeighted", 0.8, 0.5, 0.5, 1.5, 16.0 / 29},
        PuCase{"Perfect", 1, 0, 1, 1, 1},
        // Limits: a useless or fully leaking method scores 0 ...
        PuCase{"NoUtility", 0, 0.3, 1, 1, 0},
        PuCase{"FullLeak", 0.6, 1, 1, 1, 0},
        // ... unless that task has weight 0, which leaves the other score alone.
        PuCase{"UtilityOnlyIgnoresLeak", 0.6, 1, 2, 0, 0.6},
        PuCase{"PrivacyOnlyIgnoresUtility", 0, 0.3, 0, 2, 0.7}),
    [](const auto& info) { return info.param.name; });

struct BadCase {
  double s_u, s_p, i_u, i_p;
  std::string message;
};

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.message; }

class PuScoreInvalid : public ::testing::TestWithParam<BadCase> {};

TEST_P(PuScoreInvalid, NamesTheBadValue) {
  const BadCase& c = GetParam();
  EXPECT_THAT(error_of([&] { pu_score(c.s_u, c.s_p, c.i_u, c.i_p); }), HasSubstr(c.message));
}

INSTANTIATE_TEST_SUITE_P(
    Table, PuScoreInvalid,
    ::testing::Values(BadCase{64.6, 0.3, 1, 1, "S_u must be a fraction in [0, 1] (got 64.6)"},
                      BadCase{0.6, -0.1, 1, 1, "S_p must be a fraction in [0, 1] (got -0.1)"},
                      BadCase{std::nan(""), 0.3, 1, 1, "S_u must be a fraction"},
                      BadCase{0.6, std::nan(""), 1, 1, "S_p must be a fraction"},
                      BadCase{0.6, 0.3, -1, 3, "I_u must be a finite weight >= 0 (got -1)"},
                      BadCase{0.6, 0.3, 3, -1, "I_p must be a finite weight >= 0 (got -1)"},
                      BadCase{0.6, 0.3, 1, 1.5, "I_u + I_p must be 2 (got 1 + 1.5 = 2.5)"},
                      BadCase{0.6, 0.3, 0, 0, "I_u + I_p must be 2"}));

TEST(PuScore, DefaultWeightsAreEqualAndSumToleranceIsTight) {
  EXPECT_EQ(pu_score(0.6, 0.3), pu_score(0.6, 0.3, 1, 1));
  EXPECT_NO_THROW(pu_score(0.6, 0.3, 1 + 5e-10, 1));
  EXPECT_THROW(pu_score(0.6, 0.3, 1 + 2e-9, 1), Error);
}

TEST(PuScore, CheckUsesTheCallersNames) {
  EXPECT_THAT(error_of([] {
                check_pu_inputs(0.5, 2, 1, 1, {"--utility", "--privacy", "--iu", "--ip"});
              }),
              HasSubstr("--privacy must be a fraction in [0, 1] (got 2)"));
}

TEST(PuSweep, RunsFromUtilityOnlyToPrivacyOnly) {
  std::vector<PuPoint> s = pu_sweep(0.6, 0.3, 4);
  ASSERT_EQ(s.size(), 5u);
  EXPECT_EQ(s.front().i_p, 0.0);
  EXPECT_EQ(s.front().i_u, 2.0);
  EXPECT_DOUBLE_EQ(s.front().score, 0.6);  // S_u
  EXPECT_EQ(s.back().i_p, 2.0);
  EXPECT_EQ(s.back().i_u, 0.0);
  EXPECT_DOUBLE_EQ(s.back().score, 0.7);  // 1 - S_p
  EXPECT_EQ(s[2].i_p, 1.0);
  EXPECT_DOUBLE_EQ(s[2].score, 42.0 / 65);
  // I_p = 0.5: 2 / (1.5/0.6 + 0.5/0.7) = 2 / (5/2 + 5/7) = 28/45.
  EXPECT_DOUBLE_EQ(s[1].score, 28.0 / 45);
  nlohmann::json j = s[1].to_json();
  EXPECT_EQ(j["I_p"], 0.5);
  EXPECT_EQ(j["I_u"], 1.5);
  EXPECT_DOUBLE_EQ(j["pu_score"].get<double>(), 28.0 / 45);
}

TEST(PuSweep, RejectsBadStepsAndScores) {
  EXPECT_THAT(error_of([] { pu_sweep(0.6, 0.3, 0); }), HasSubstr("at least 1 step, got 0"));
  EXPECT_THAT(error_of([] { pu_sweep(1.5, 0.3, 4); }), HasSubstr("S_u must be a fraction"));
  std::vector<PuPoint> one = pu_sweep(0.6, 0.3, 1);
  ASSERT_EQ(one.size(), 2u);
  EXPECT_DOUBLE_EQ(one[1].score, 0.7);
}

}  // namespace
}  // namespace ppreid::privacy
