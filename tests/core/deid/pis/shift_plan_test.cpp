#include "core/deid/pis/shift_plan.h"

#include <gtest/gtest.h>

#include <functional>
#include <set>

#include "core/data/stickman.h"
#include "core/util/error.h"
#include "tests/core/deid/pis/pis_test_data.h"

namespace ppreid::deid::pis {
namespace {

using data::SplitKind;
using testdata::identities;
using testdata::make_dataset;
using testdata::market_like;

PartnerOptions seeded(std::uint64_t seed, int k = 2) {
  PartnerOptions o;
  o.k = k;
  o.seed = seed;
  return o;
}

ShiftPlan plan_for(const data::Dataset& ds, const PartnerOptions& o,
                   const data::Dataset* partners = nullptr) {
  return plan_identity_shift(ds, partners, o, make_lambdas(o.k, o.k == 2 ? 0.5 : 0.4));
}

std::vector<const data::ImageRecord*> all_records(const data::Dataset& ds) {
  std::vector<const data::ImageRecord*> out;
  for (const auto* split : {&ds.train, &ds.query, &ds.gallery})
    for (const auto& r : *split) out.push_back(&r);
  return out;
}

const data::ImageRecord* find_record(const data::Dataset& ds, const std::string& path) {
  for (const auto* r : all_records(ds))
    if (r->path == path) return r;
  return nullptr;
}

// ---- lambdas --------------------------------------------------------------------------------

struct LambdaCase {
  std::vector<double> lambdas;
  double d;
  std::string error;  // "" = valid; otherwise a substring of the UsageError
};

class LambdaTest : public ::testing::TestWithParam<LambdaCase> {};

TEST_P(LambdaTest, ValidOrNamedError) {
  const LambdaCase& c = GetParam();
  if (c.error.empty()) {
    EXPECT_NO_THROW(validate_lambdas(c.lambdas, c.d));
    return;
  }
  try {
    validate_lambdas(c.lambdas, c.d);
    FAIL() << "accepted, expected: " << c.error;
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(c.error), std::string::npos) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, LambdaTest,
    ::testing::Values(
        LambdaCase{{0.5, 0.5}, 0.5, ""}, LambdaCase{{0.4, 0.3, 0.3}, 0.5, ""},
        LambdaCase{{0.6, 0.4}, 0.6, ""}, LambdaCase{{0.25, 0.25, 0.25, 0.25}, 0.25, ""},
        LambdaCase{{1.0 / 3, 1.0 / 3, 1.0 / 3}, 1.0 / 3, ""},
        LambdaCase{{0.7, 0.3},
                   0.5,
                   "--lambda 0.7 gives the target weight 0.7 > d = 0.5: a weight above d reveals "
                   "that image's identity; use --lambda <= 0.5 or raise --max-weight"},
        LambdaCase{{0.3, 0.7}, 0.5, "partner 1 the weight 0.7 > d = 0.5"},
        LambdaCase{{0.5, 0.25, 0.25, 0.0}, 0.5, "partner 3 the weight 0 <= 0"},
        LambdaCase{{0.5, 0.6, -0.1}, 1.0, "partner 2 the weight -0.1 <= 0"},
        LambdaCase{{1.0}, 1.0, "k >= 2"}, LambdaCase{{}, 0.5, "k >= 2"},
        LambdaCase{{0.5, 0.4}, 0.5, "sum to 0.9, not 1"},
        LambdaCase{{0.5, 0.5 + 1e-7}, 1.0, "not 1"},
        LambdaCase{{0.25, 0.25, 0.25, 0.25}, 0.2, "--max-weight 0.2 cannot be met by k = 4"},
        LambdaCase{{0.5, 0.5}, 0.0, "--max-weight 0 must be in (0, 1]"},
        LambdaCase{{0.5, 0.5}, 1.5, "--max-weight 1.5 must be in (0, 1]"}));

TEST(MakeLambdas, TargetFirstRestSplitEqually) {
  EXPECT_EQ(make_lambdas(), (std::vector<double>{0.5, 0.5}));
  EXPECT_EQ(make_lambdas(3, 0.5), (std::vector<double>{0.5, 0.25, 0.25}));
  EXPECT_EQ(make_lambdas(5, 0.2), (std::vector<double>{0.2, 0.2, 0.2, 0.2, 0.2}));
  EXPECT_NO_THROW(validate_lambdas(make_lambdas(4, 0.25), 0.5));
  EXPECT_THROW(make_lambdas(1, 0.5), UsageError);
  EXPECT_THROW(validate_lambdas(make_lambdas(2, 0.7)), UsageError);  // default d = 0.5
}

// ---- partners and labels --------------------------------------------------------------------

TEST(ShiftPlan, EveryImageOfAnIdentityGetsTheSamePartnerAndLabelInEverySplit) {
  data::Dataset ds = market_like();
  ShiftPlan plan = plan_for(ds, seeded(1));
  ASSERT_EQ(plan.by_pid.size(), 12u);
  EXPECT_EQ(plan.distractors.size(), 2u);
  EXPECT_EQ(plan.lambdas, (std::vector<double>{0.5, 0.5}));
  EXPECT_FALSE(plan.cross_dataset);
  std::map<int, std::set<std::string>> released_pid_field, partner_of;
  for (const auto* r : all_records(ds)) {
    const IdentityShift& s = plan.for_image(*r);
    EXPECT_EQ(s.original_pid, r->pid);
    ASSERT_EQ(s.partners.size(), 1u);
    if (r->pid == 0) continue;
    std::string name = shifted_path(r->path, ds.layout, s.new_pid);
    released_pid_field[r->pid].insert(name.substr(name.find('/') + 1, 4));
    partner_of[r->pid].insert(s.partners[0].path);
  }
  // Test identities 7..12 have images in both query and gallery.
  for (int pid = 1; pid <= 12; ++pid) {
    EXPECT_EQ(released_pid_field[pid].size(), 1u) << pid;
    EXPECT_EQ(partner_of[pid].size(), 1u) << pid;
  }
  // Distractors keep label 0 and have their own entry each.
  for (const auto& r : ds.gallery) {
    if (r.pid == 0) {
      EXPECT_EQ(plan.for_image(r).new_pid, 0);
    }
  }
  data::ImageRecord unknown{"query/0099_c1s1_000001_01.jpg", 99, 0, -1};
  EXPECT_THROW(plan.for_image(unknown), Error);
  data::ImageRecord unknown_distractor{"bounding_box_test/0000_c1s1_999999_01.jpg", 0, 0, -1};
  EXPECT_THROW(plan.for_image(unknown_distractor), Error);
}

TEST(ShiftPlan, PartnersAreOtherIdentitiesWithUsablePosePreferablyFromTrain) {
  // Identity 3 and every test identity's gallery images have no usable pose.
  auto specs = identities(1, 6, SplitKind::kTrain);
  specs[2].usable_pose = false;
  for (auto& s : identities(7, 12, SplitKind::kQuery, 2)) specs.push_back(s);
  for (auto s : identities(7, 12, SplitKind::kGallery, 2)) {
    s.usable_pose = false;
    specs.push_back(s);
  }
  data::Dataset ds = make_dataset(specs, 3);
  for (std::uint64_t seed = 1; seed <= 25; ++seed) {
    ShiftPlan plan = plan_for(ds, seeded(seed));
    auto check = [&](const IdentityShift& s) {
      for (const auto& p : s.partners) {
        EXPECT_NE(p.pid, s.original_pid);
        EXPECT_NE(p.pid, 3);  // no usable image at all
        const data::ImageRecord* r = find_record(ds, p.path);
        ASSERT_NE(r, nullptr) << p.path;
        EXPECT_EQ(r->pid, p.pid);
        ASSERT_NE(ds.pose(*r), nullptr);
        EXPECT_TRUE(data::usable_for_pose_conditioning(*ds.pose(*r))) << p.path;
        EXPECT_EQ(p.path.rfind("bounding_box_train/", 0), 0u) << p.path;  // train preferred
      }
    };
    for (const auto& [pid, s] : plan.by_pid) check(s);
    for (const auto& [path, s] : plan.distractors) check(s);
  }
}

TEST(ShiftPlan, PartnerIdentityAndImageAreDrawnUniformly) {
  // Identity 1's partner comes from train identities 2..6 (3 images each): over 300 seeds each
  // identity should be drawn about 60 times and each of its images about 20 times.
  data::Dataset ds = market_like();
  std::map<int, int> identity_count;
  std::map<std::string, int> image_count;
  const int runs = 300;
  for (int seed = 1; seed <= runs; ++seed) {
    const PartnerImage p =
        plan_for(ds, seeded(static_cast<std::uint64_t>(seed))).by_pid.at(1).partners[0];
    ++identity_count[p.pid];
    ++image_count[p.path];
  }
  EXPECT_EQ(identity_count.size(), 5u);
  for (const auto& [pid, n] : identity_count) {
    EXPECT_TRUE(pid >= 2 && pid <= 6) << pid;
    EXPECT_TRUE(n >= 30 && n <= 90) << "identity " << pid << " drawn " << n << " times";
  }
  EXPECT_EQ(image_count.size(), 15u);
  for (const auto& [path, n] : image_count)
    EXPECT_TRUE(n >= 5 && n <= 40) << path << " drawn " << n << " times";
}

TEST(ShiftPlan, FallsBackToQueryAndGalleryWhenTrainHasNoUsablePose) {
  auto specs = identities(1, 4, SplitKind::kTrain);
  for (auto& s : specs) s.usable_pose = false;
  for (auto& s : identities(5, 8, SplitKind::kGallery)) specs.push_back(s);
  data::Dataset ds = make_dataset(specs);
  ShiftPlan plan = plan_for(ds, seeded(4));
  for (const auto& [pid, s] : plan.by_pid) {
    EXPECT_GE(s.partners[0].pid, 5);
    EXPECT_NE(s.partners[0].pid, pid);
    EXPECT_EQ(s.partners[0].path.rfind("bounding_box_test/", 0), 0u);
  }
}

TEST(ShiftPlan, KThreeGivesTwoDistinctPartnerIdentities) {
  data::Dataset ds = market_like();
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    ShiftPlan plan = plan_identity_shift(ds, nullptr, seeded(seed, 3), make_lambdas(3, 0.4));
    EXPECT_EQ(plan.lambdas.size(), 3u);
    for (const auto& [pid, s] : plan.by_pid) {
      ASSERT_EQ(s.partners.size(), 2u);
      EXPECT_NE(s.partners[0].pid, s.partners[1].pid);
      EXPECT_NE(s.partners[0].pid, pid);
      EXPECT_NE(s.partners[1].pid, pid);
    }
    for (const auto& [path, s] : plan.distractors) {
      ASSERT_EQ(s.partners.size(), 2u);
      EXPECT_NE(s.partners[0].pid, s.partners[1].pid);
    }
  }
  EXPECT_THROW(plan_identity_shift(ds, nullptr, seeded(1, 3), make_lambdas(2, 0.5)), UsageError);
}

TEST(ShiftPlan, NewLabelsAreUniqueAndNeverAnOriginalLabelOfEitherDataset) {
  // Target pids 1..10; the partner dataset takes 21..9985. Only 11..20 and 9986..9999 are free.
  data::Dataset targets = make_dataset(identities(1, 10, SplitKind::kTrain, 2), 0, "targets");
  data::Dataset partners = make_dataset(identities(21, 9985, SplitKind::kTrain, 1), 0, "partners");
  std::set<int> seen_labels;
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    ShiftPlan plan = plan_for(targets, seeded(seed), &partners);
    EXPECT_TRUE(plan.cross_dataset);
    std::set<int> labels;
    for (const auto& [pid, s] : plan.by_pid) {
      EXPECT_TRUE((s.new_pid >= 11 && s.new_pid <= 20) || (s.new_pid >= 9986 && s.new_pid <= 9999))
          << s.new_pid;
      EXPECT_TRUE(labels.insert(s.new_pid).second) << "label " << s.new_pid << " used twice";
      EXPECT_GE(s.partners[0].pid, 21);  // from the partner dataset
      seen_labels.insert(s.new_pid);
    }
  }
  EXPECT_GT(seen_labels.size(), 10u);  // drawn at random, not always the same ten

  // Inside one dataset: labels avoid every pid of all three splits.
  data::Dataset ds = market_like();
  ShiftPlan plan = plan_for(ds, seeded(9));
  std::set<int> labels;
  for (const auto& [pid, s] : plan.by_pid) {
    EXPECT_TRUE(s.new_pid > 12 && s.new_pid <= 9999) << s.new_pid;
    labels.insert(s.new_pid);
  }
  EXPECT_EQ(labels.size(), plan.by_pid.size());
}

TEST(ShiftPlan, TooFewFreeLabelsIsAClearError) {
  data::Dataset targets = make_dataset(identities(1, 20, SplitKind::kTrain, 1), 0, "targets");
  data::Dataset partners = make_dataset(identities(21, 9990, SplitKind::kTrain, 1), 0, "partners");
  try {
    plan_for(targets, seeded(1), &partners);
    FAIL();
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("has 20 identities but only 9 of the labels"), std::string::npos) << msg;
    EXPECT_NE(msg.find("targets"), std::string::npos) << msg;
  }
}

TEST(ShiftPlan, OppositeAttributePartnersReallyDiffer) {
  data::Dataset ds = market_like();
  for (int pid = 1; pid <= 12; ++pid) {
    data::Attributes a;
    a.gender = pid % 2;
    a.hair_length = pid % 3 == 0 ? 1 : 0;
    a.upper_color = pid <= 4 ? "red" : "blue";
    ds.attributes[pid] = a;
  }
  for (const std::string attribute : {"gender", "hair_length", "upper_color"}) {
    for (std::uint64_t seed = 1; seed <= 10; ++seed) {
      PartnerOptions o = seeded(seed);
      o.opposite_attribute = attribute;
      ShiftPlan plan = plan_for(ds, o);
      for (const auto& [pid, s] : plan.by_pid) {
        const data::Attributes& own = ds.attributes.at(pid);
        const data::Attributes& other = ds.attributes.at(s.partners[0].pid);
        const bool differs = attribute == "gender"        ? own.gender != other.gender
                             : attribute == "hair_length" ? own.hair_length != other.hair_length
                                                          : own.upper_color != other.upper_color;
        EXPECT_TRUE(differs) << attribute << ": identity " << pid << " and partner "
                             << s.partners[0].pid;
      }
      EXPECT_EQ(plan.distractors.size(), 2u);  // no attributes: any identity
    }
  }
  PartnerOptions o = seeded(1);
  o.opposite_attribute = "shoe_size";
  EXPECT_THROW(plan_for(ds, o), UsageError);
}

struct PlanErrorCase {
  std::string name;
  std::function<void(data::Dataset&, PartnerOptions&)> setup;
  std::string error;
};

class PlanErrorTest : public ::testing::TestWithParam<PlanErrorCase> {};

TEST_P(PlanErrorTest, NamesDatasetAndWhatToDo) {
  data::Dataset ds = market_like();
  PartnerOptions o = seeded(1);
  GetParam().setup(ds, o);
  try {
    plan_for(ds, o);
    FAIL() << "no error, expected: " << GetParam().error;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(GetParam().error), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("mem-dataset"), std::string::npos) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, PlanErrorTest,
    ::testing::Values(
        PlanErrorCase{"NoKeypoints",
                      [](data::Dataset& ds, PartnerOptions&) { ds.keypoints.clear(); },
                      "has no keypoints.csv"},
        PlanErrorCase{"NoUsablePose",
                      [](data::Dataset& ds, PartnerOptions&) {
                        for (auto& [path, pose] : ds.keypoints) pose = testdata::make_pose(false);
                      },
                      "usable pose keypoints"},
        PlanErrorCase{"OneIdentity",
                      [](data::Dataset& ds, PartnerOptions&) {
                        ds = make_dataset({{5, SplitKind::kTrain, 3, true}});
                      },
                      "no eligible partner for identity 5"},
        PlanErrorCase{"AllSameGender",
                      [](data::Dataset& ds, PartnerOptions& o) {
                        for (int pid = 1; pid <= 12; ++pid) ds.attributes[pid] = data::Attributes{};
                        o.opposite_attribute = "gender";
                      },
                      "drop --opposite-attribute"},
        PlanErrorCase{"NoAttributesFile",
                      [](data::Dataset&, PartnerOptions& o) { o.opposite_attribute = "gender"; },
                      "needs attributes.csv"},
        PlanErrorCase{"IdentityWithoutAttributes",
                      [](data::Dataset& ds, PartnerOptions& o) {
                        for (int pid = 2; pid <= 12; ++pid) ds.attributes[pid].gender = pid % 2;
                        o.opposite_attribute = "gender";
                      },
                      "identity 1 has no row"},
        PlanErrorCase{"KTooLarge",
                      [](data::Dataset& ds, PartnerOptions& o) {
                        ds = make_dataset(identities(1, 3, SplitKind::kTrain));
                        o.k = 4;
                      },
                      "lower --k"}),
    [](const auto& info) { return info.param.name; });

TEST(ShiftPlan, SameSeedSamePlanOtherSeedOtherPlan) {
  data::Dataset ds = market_like();
  EXPECT_EQ(plan_for(ds, seeded(7)), plan_for(ds, seeded(7)));
  EXPECT_NE(plan_for(ds, seeded(7)), plan_for(ds, seeded(8)));
  PartnerOptions csprng;  // no seed: OpenSSL's CSPRNG
  EXPECT_NE(plan_for(ds, csprng), plan_for(ds, csprng));
}

// ---- file names -----------------------------------------------------------------------------

struct ShiftedPathCase {
  std::string path;
  data::Layout layout;
  int new_pid;
  std::string expected;  // "" = Error
};

class ShiftedPathTest : public ::testing::TestWithParam<ShiftedPathCase> {};

TEST_P(ShiftedPathTest, RewritesOnlyThePidField) {
  const auto& c = GetParam();
  if (c.expected.empty()) {
    EXPECT_THROW(shifted_path(c.path, c.layout, c.new_pid), Error);
  } else {
    EXPECT_EQ(shifted_path(c.path, c.layout, c.new_pid), c.expected);
  }
}

constexpr auto kMarket = data::Layout::kMarket1501;
constexpr auto kDuke = data::Layout::kDukeMTMC;

INSTANTIATE_TEST_SUITE_P(
    Table, ShiftedPathTest,
    ::testing::Values(ShiftedPathCase{"bounding_box_train/0002_c1s1_000451_03.jpg", kMarket, 517,
                                      "bounding_box_train/0517_c1s1_000451_03.jpg"},
                      ShiftedPathCase{"query/1501_c6s4_001877_00.png", kMarket, 3,
                                      "query/0003_c6s4_001877_00.png"},
                      ShiftedPathCase{"bounding_box_test/0000_c2s1_000007_01.jpg", kMarket, 0,
                                      "bounding_box_test/0000_c2s1_000007_01.jpg"},
                      ShiftedPathCase{"0002_c1s1_000451_03.jpg", kMarket, 9999,
                                      "9999_c1s1_000451_03.jpg"},
                      ShiftedPathCase{"bounding_box_train/12345_c1s1_000451_03.jpg", kMarket, 42,
                                      "bounding_box_train/0042_c1s1_000451_03.jpg"},
                      ShiftedPathCase{"bounding_box_train/0005_c2_f0046985.jpg", kDuke, 77,
                                      "bounding_box_train/0077_c2_f0046985.jpg"},
                      ShiftedPathCase{"bounding_box_train/0005_c2_f0046985.jpg", kMarket, 77, ""},
                      ShiftedPathCase{"bounding_box_train/0002_c1s1_000451_03.jpg", kDuke, 77, ""},
                      ShiftedPathCase{"bounding_box_train/Thumbs.db", kMarket, 7, ""},
                      ShiftedPathCase{"query/0002_c1s1_000451_03.jpg", kMarket, 10000, ""},
                      ShiftedPathCase{"query/0002_c1s1_000451_03.jpg", kMarket, -1, ""}));

// ---- JSON -----------------------------------------------------------------------------------

TEST(ShiftPlanJson, RoundTrips) {
  data::Dataset ds = market_like();
  for (int k : {2, 3}) {
    ShiftPlan plan = plan_for(ds, seeded(3, k));
    nlohmann::json j = plan_to_json(plan);
    EXPECT_EQ(plan_from_json(j), plan);
    EXPECT_EQ(plan_from_json(nlohmann::json::parse(j.dump())), plan);
  }
}

struct JsonErrorCase {
  std::string name;
  std::function<void(nlohmann::json&)> edit;
  std::string field;  // must appear in the error
};

class ShiftPlanJsonErrorTest : public ::testing::TestWithParam<JsonErrorCase> {};

TEST_P(ShiftPlanJsonErrorTest, NamesTheBadField) {
  nlohmann::json j = plan_to_json(plan_for(market_like(), seeded(2)));
  GetParam().edit(j);
  try {
    plan_from_json(j);
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'" + GetParam().field + "'"), std::string::npos)
        << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, ShiftPlanJsonErrorTest,
    ::testing::Values(
        JsonErrorCase{"MissingNewPid", [](auto& j) { j["identities"][0].erase("new_pid"); },
                      "identities[0].new_pid"},
        JsonErrorCase{"StringPid", [](auto& j) { j["identities"][1]["original_pid"] = "2"; },
                      "identities[1].original_pid"},
        JsonErrorCase{"LabelOutOfRange", [](auto& j) { j["identities"][0]["new_pid"] = 10000; },
                      "identities[0].new_pid"},
        JsonErrorCase{
            "RepeatedLabel",
            [](auto& j) { j["identities"][3]["new_pid"] = j["identities"][0]["new_pid"]; },
            "identities[3].new_pid"},
        JsonErrorCase{"ExtraField", [](auto& j) { j["identities"][2]["note"] = 1; },
                      "identities[2].note"},
        JsonErrorCase{"TooManyPartners",
                      [](auto& j) {
                        j["identities"][0]["partners"].push_back({{"path", "x.jpg"}, {"pid", 4}});
                      },
                      "identities[0].partners"},
        JsonErrorCase{"SelfPartner",
                      [](auto& j) {
                        j["identities"][0]["partners"][0]["pid"] =
                            j["identities"][0]["original_pid"];
                      },
                      "identities[0].partners"},
        JsonErrorCase{"EmptyPartnerPath",
                      [](auto& j) { j["distractors"][1]["partners"][0]["path"] = ""; },
                      "distractors[1].partners[0].path"},
        JsonErrorCase{"BadLambdas",
                      [](auto& j) {
                        j["lambdas"] = {0.5, 0.4};
                      },
                      "lambdas"},
        JsonErrorCase{"NoFormat", [](auto& j) { j.erase("format"); }, "format"},
        JsonErrorCase{"CrossNotBool", [](auto& j) { j["cross_dataset"] = 0; }, "cross_dataset"},
        JsonErrorCase{"NotAnObject", [](auto& j) { j = nlohmann::json::array(); }, "(top level)"}),
    [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace ppreid::deid::pis
