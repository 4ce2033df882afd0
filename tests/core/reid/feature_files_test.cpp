#include "core/reid/feature_files.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <string>
#include <vector>

#include "core/reid/feature_eval.h"
#include "core/util/error.h"
#include "tests/support/centroid_reference_case.h"
#include "tests/support/temp_dir.h"

namespace ppreid::reid {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

TEST(FeatureFile, RoundTripsExactly) {
  testing::TempDir dir;
  FeatureSet set;
  set.features = torch::randn({5, 7});
  set.features[0][0] = 1e-30f;
  set.features[1][1] = -3.4e38f;
  set.pids = {1, 2, 0, 7, 1501};
  set.camids = {1, 6, 3, 2, 1};
  write_feature_csv(dir / "query.csv", set);
  FeatureSet back = read_feature_csv(dir / "query.csv");
  EXPECT_TRUE(torch::equal(back.features, set.features));
  EXPECT_EQ(back.pids, set.pids);
  EXPECT_EQ(back.camids, set.camids);
}

TEST(FeatureFile, AcceptsBlankLinesCrLfAndSpaces) {
  testing::TempDir dir;
  write_text(dir / "g.csv", "1, 0, 0.5 ,-2\r\n\r\n2,1,1e-3,4\r\n");
  FeatureSet set = read_feature_csv(dir / "g.csv");
  EXPECT_THAT(set.pids, ElementsAre(1, 2));
  EXPECT_THAT(set.camids, ElementsAre(0, 1));
  ASSERT_EQ(set.features.sizes(), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(set.features.scalar_type(), torch::kFloat32);
  EXPECT_FLOAT_EQ(set.features[0][1].item<float>(), -2.0f);
  EXPECT_FLOAT_EQ(set.features[1][0].item<float>(), 1e-3f);
}

struct BadFile {
  std::string contents;
  std::string message;  // expected to appear in the error, after the file name
};

class FeatureFileErrors : public ::testing::TestWithParam<BadFile> {};

TEST_P(FeatureFileErrors, NameFileLineAndProblem) {
  testing::TempDir dir;
  const auto path = dir / "gallery.csv";
  write_text(path, GetParam().contents);
  try {
    read_feature_csv(path);
    FAIL() << "expected an error for: " << GetParam().contents;
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("gallery.csv" + GetParam().message));
  }
}

INSTANTIATE_TEST_SUITE_P(
    FeatureFile, FeatureFileErrors,
    ::testing::Values(BadFile{"1,0,0.5,0.25\n2,1,0.5\n", ":2: 1 features, expected 2 as in line 1"},
                      BadFile{"1,0,1,2\n\n2,1,3,4,5\n", ":3: 3 features, expected 2 as in line 1"},
                      BadFile{"1,0,0.5,abc\n", ":1: feature 2 'abc' is not a number"},
                      BadFile{"1,0,0.5,\n", ":1: feature 2 '' is not a number"},
                      BadFile{"1,0,1.5x\n", ":1: feature 1 '1.5x' is not a number"},
                      BadFile{"1,0,1,2\n1,0,nan,3\n", ":2: feature 1 is nan"},
                      BadFile{"1,0,1,-inf\n", ":1: feature 2 is inf"},
                      BadFile{"1,0,1e99\n", ":1: feature 1 '1e99' is out of float32 range"},
                      BadFile{"x,0,1\n", ":1: pid 'x' is not an integer"},
                      BadFile{"1,2.5,1\n", ":1: camid '2.5' is not an integer"},
                      BadFile{"1,0\n", ":1: expected pid,camid,f_1,...,f_d but found 2 fields"},
                      BadFile{"", ": no feature rows"}, BadFile{"\n \n", ": no feature rows"}));

TEST(FeatureFile, MissingFile) {
  testing::TempDir dir;
  try {
    read_feature_csv(dir / "query.csv");
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("query.csv' does not exist"));
  }
}

TEST(FeatureFile, WriterRejectsNanAndMismatchedLabels) {
  testing::TempDir dir;
  FeatureSet set{torch::ones({2, 3}), {1, 2}, {0}};
  EXPECT_THROW(write_feature_csv(dir / "a.csv", set), Error);
  set.camids = {0, 1};
  set.features[1][2] = std::nanf("");
  EXPECT_THROW(write_feature_csv(dir / "a.csv", set), Error);
  EXPECT_FALSE(std::filesystem::exists(dir / "a.csv"));
}

TEST(FeatureFile, EvaluateDirectory) {
  testing::TempDir dir;
  // Query pid 1 cam 0 at (0,0); gallery: pid 1 cam 1 at (3,0), a distractor at (0.5,0) ranks
  // first for instance retrieval. Centroids, strict: the normalized centroid (1,0) is still
  // behind the distractor (AP 1/2); reference (the default): the distractor has no query, so
  // no centroid, and pid 1's centroid is alone (AP 1).
  write_text(dir / "query.csv", "1,0,0,0\n");
  write_text(dir / "gallery.csv", "1,1,3,0\n0,1,0.5,0\n");
  nlohmann::json j = evaluate_feature_dir(dir.path(), Metric::kEuclidean, true);
  EXPECT_DOUBLE_EQ(j.at("instance").at("mAP").get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(j.at("centroid").at("mAP").get<double>(), 1.0);
  EXPECT_EQ(j.at("centroid").at("protocol"), "reference");
  EXPECT_EQ(j.at("instance").at("valid_queries").get<int>(), 1);
  nlohmann::json strict =
      evaluate_feature_dir(dir.path(), Metric::kEuclidean, true, CentroidProtocol::kStrict);
  EXPECT_DOUBLE_EQ(strict.at("centroid").at("mAP").get<double>(), 0.5);
  EXPECT_EQ(strict.at("centroid").at("protocol"), "strict");
  EXPECT_FALSE(evaluate_feature_dir(dir.path(), Metric::kCosine, false).contains("centroid"));
}

TEST(FeatureFile, EvaluateDirectoryMatchesTheNumpyCentroidReference) {
  // The random case of tests/reference/eval_centroids_reference.py, through the CSV files: the
  // default protocol reproduces the script's figures (they are listed with the case).
  testing::TempDir dir;
  const testing::CentroidReferenceCase c = testing::make_centroid_reference_case();
  write_feature_csv(dir / "query.csv", c.query);
  write_feature_csv(dir / "gallery.csv", c.gallery);
  const nlohmann::json j = evaluate_feature_dir(dir.path(), Metric::kEuclidean, true);
  const nlohmann::json& m = j.at("centroid");
  const auto& want = testing::kCentroidReference;
  EXPECT_EQ(m.at("protocol"), "reference");
  EXPECT_EQ(m.at("valid_queries").get<int>(), want.valid_queries);
  EXPECT_EQ(m.at("total_queries").get<int>(), want.total_queries);
  EXPECT_NEAR(m.at("mAP").get<double>(), want.map, 1e-6);
  EXPECT_NEAR(m.at("mINP").get<double>(), want.minp, 1e-6);
  EXPECT_NEAR(m.at("rank1").get<double>(), want.cmc[0], 1e-6);
  EXPECT_NEAR(m.at("rank5").get<double>(), want.cmc[4], 1e-6);
  EXPECT_NEAR(m.at("rank10").get<double>(), want.cmc[9], 1e-6);
}

TEST(FeatureFile, EvaluateDirectoryErrors) {
  testing::TempDir dir;
  write_text(dir / "query.csv", "1,0,0,0\n");
  try {
    evaluate_feature_dir(dir.path(), Metric::kEuclidean, false);
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("has no gallery.csv"));
  }
  write_text(dir / "gallery.csv", "1,1,2,0,3\n");
  try {
    evaluate_feature_dir(dir.path(), Metric::kEuclidean, false);
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("has 2-d features but"));
    EXPECT_THAT(e.what(), HasSubstr("has 3-d"));
  }
}

}  // namespace
}  // namespace ppreid::reid
