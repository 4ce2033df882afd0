#include "core/deid/image_dp.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/util/error.h"

namespace ppreid::deid {
namespace {

struct SensitivityCase {
  char preset;
  double paper;  // Table I of the image-DP paper, for a 64x128 image
  double tight;  // blocks * 3 * (L-1)
};

class SensitivityTest : public ::testing::TestWithParam<SensitivityCase> {};

TEST_P(SensitivityTest, MatchesTableOneAndTightBound) {
  ImageDpOptions o = image_dp_preset(GetParam().preset, 1.0);
  o.calibration = Calibration::kPaper;
  EXPECT_DOUBLE_EQ(sensitivity(o, 64, 128), GetParam().paper);
  o.calibration = Calibration::kTight;
  EXPECT_DOUBLE_EQ(sensitivity(o, 64, 128), GetParam().tight);
}

INSTANTIATE_TEST_SUITE_P(
    TableOne, SensitivityTest,
    ::testing::Values(SensitivityCase{'A', 221184.0, 8192.0 * 3 * 3},
                      SensitivityCase{'B', 702464.0, 2048.0 * 3 * 7},
                      SensitivityCase{'C', 1728000.0, 512.0 * 3 * 15},
                      SensitivityCase{'D', 135834624000.0, 8192.0 * 3 * 255}));

TEST(ImageDp, PaperCalibrationRefusedForTwoLevels) {
  ImageDpOptions o;
  o.color_bits = 7;
  o.calibration = Calibration::kPaper;
  try {
    sensitivity(o, 64, 128);
    FAIL() << "paper calibration with L=2 must be refused";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("L = 2"), std::string::npos) << e.what();
  }
  o.calibration = Calibration::kTight;
  EXPECT_DOUBLE_EQ(sensitivity(o, 64, 128), 8192.0 * 3);
}

TEST(ImageDp, EdgeBlocksCount) {
  EXPECT_EQ(blocks_of(64, 128, 2), 16 * 32);
  EXPECT_EQ(blocks_of(65, 127, 2), 17 * 32);
  EXPECT_EQ(blocks_of(5, 3, 0), 15);
}

struct BadOptions {
  double epsilon;
  int b, c;
  std::string flag;
};

class ImageDpOptionsTest : public ::testing::TestWithParam<BadOptions> {};

TEST_P(ImageDpOptionsTest, RejectsNamingTheFlag) {
  ImageDpOptions o;
  o.epsilon = GetParam().epsilon;
  o.pixel_bits = GetParam().b;
  o.color_bits = GetParam().c;
  try {
    ImageDp dp(o);
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(GetParam().flag), std::string::npos) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Table, ImageDpOptionsTest,
                         ::testing::Values(BadOptions{0.0, 0, 6, "--epsilon"},
                                           BadOptions{-1.0, 0, 6, "--epsilon"},
                                           BadOptions{std::nan(""), 0, 6, "--epsilon"},
                                           BadOptions{1.0, -1, 6, "--pixel-bits"},
                                           BadOptions{1.0, 7, 6, "--pixel-bits"},
                                           BadOptions{1.0, 0, 8, "--color-bits"},
                                           BadOptions{1.0, 0, -1, "--color-bits"}));

// With infinite epsilon the mechanism is pixelization + quantization only; check it by hand on
// a 4x2 image with 2x2 blocks (b=1) and 3 dropped bits (c=3, L=32, bin centre +4).
TEST(ImageDp, InfiniteEpsilonLeavesReducedImage) {
  cv::Mat img(2, 4, CV_8UC3);
  // Left block: values 10, 20, 30, 41 in every channel -> mean 25.25 -> 25 -> level 3 -> 28.
  // Right block: 200, 201, 202, 203 -> mean 201.5 -> rounds to 202 -> level 25 -> 204.
  const int left[4] = {10, 20, 30, 41}, right[4] = {200, 201, 202, 203};
  for (int i = 0; i < 4; ++i) {
    img.at<cv::Vec3b>(i / 2, i % 2) = cv::Vec3b(left[i], left[i], left[i]);
    img.at<cv::Vec3b>(i / 2, 2 + i % 2) = cv::Vec3b(right[i], right[i], right[i]);
  }
  ImageDpOptions o;
  o.epsilon = std::numeric_limits<double>::infinity();
  o.pixel_bits = 1;
  o.color_bits = 3;
  o.seed = 1;
  ImageDp dp(o);
  cv::Mat out = dp.apply(img, {});
  for (int y = 0; y < 2; ++y) {
    EXPECT_EQ(out.at<cv::Vec3b>(y, 0), cv::Vec3b(28, 28, 28));
    EXPECT_EQ(out.at<cv::Vec3b>(y, 1), cv::Vec3b(28, 28, 28));
    EXPECT_EQ(out.at<cv::Vec3b>(y, 2), cv::Vec3b(204, 204, 204));
    EXPECT_EQ(out.at<cv::Vec3b>(y, 3), cv::Vec3b(204, 204, 204));
  }
  // b = 0, c = 0, infinite epsilon: the exact image.
  o.pixel_bits = 0;
  o.color_bits = 0;
  ImageDp exact(o);
  cv::Mat random(16, 8, CV_8UC3);
  cv::randu(random, 0, 256);
  EXPECT_EQ(cv::norm(exact.apply(random, {}), random, cv::NORM_INF), 0.0);
}

TEST(ImageDp, SeededRunsRepeatCsprngRunsDoNot) {
  cv::Mat img(128, 64, CV_8UC3, cv::Scalar(90, 120, 200));
  ImageDpOptions o = image_dp_preset('A', 1e5);
  o.seed = 7;
  ImageDp seeded(o);
  cv::Mat a = seeded.apply(img, {nullptr, nullptr, 3});
  cv::Mat b = seeded.apply(img, {nullptr, nullptr, 3});
  cv::Mat c = seeded.apply(img, {nullptr, nullptr, 4});
  EXPECT_EQ(cv::norm(a, b, cv::NORM_INF), 0.0);
  EXPECT_GT(cv::norm(a, c, cv::NORM_L1), 0.0);
  o.seed.reset();
  ImageDp csprng(o);
  EXPECT_GT(cv::norm(csprng.apply(img, {}), csprng.apply(img, {}), cv::NORM_L1), 0.0);
  EXPECT_EQ(a.size(), img.size());
  EXPECT_EQ(a.type(), img.type());
}

// More privacy, more damage: mean absolute error grows as epsilon shrinks.
TEST(ImageDp, NoiseGrowsAsEpsilonShrinks) {
  cv::Mat img(128, 64, CV_8UC3);
  cv::randu(img, 0, 256);
  double previous = -1;
  for (double eps : {1e9, 3e5, 1e5, 3e4, 1e3}) {
    ImageDpOptions o = image_dp_preset('A', eps);
    o.seed = 1;
    double err = cv::norm(ImageDp(o).apply(img, {}), img, cv::NORM_L1) / img.total() / 3;
    EXPECT_GT(err, previous) << "epsilon " << eps;
    previous = err;
  }
}

// The guarantee of the tables actually sampled, for every preset and calibration from
// epsilon 1e2 to 1e6 and two crop sizes: never above the requested epsilon, and not far below it
// either (the margins cost at most 1e-4 of the budget, so the utility is the paper's). Above
// ~20 per level (B and C at 1e6: almost no noise) the tails fall below 2^-64 and the certificate
// is lower than asked, a stronger guarantee than requested.
TEST(ImageDp, CertifiedEpsilonNeverExceedsRequested) {
  for (char preset : {'A', 'B', 'C', 'D'})
    for (Calibration calibration : {Calibration::kTight, Calibration::kPaper})
      for (double eps : {1e2, 1e3, 1e4, 1e5, 1e6}) {
        ImageDpOptions o = image_dp_preset(preset, eps);
        o.calibration = calibration;
        ImageDp dp(o);
        for (auto [w, h] : {std::pair{64, 128}, std::pair{37, 91}}) {
          const double certified = dp.certified_epsilon(w, h);
          const std::string where = std::string("preset ") + preset + " " +
                                    calibration_name(calibration) + " eps " + std::to_string(eps) +
                                    " " + std::to_string(w) + "x" + std::to_string(h);
          EXPECT_LE(certified, eps) << where;
          // The paper's Delta exceeds the true L1 sensitivity, so its certificate is lower.
          const double expected = eps * l1_sensitivity(o, w, h) / sensitivity(o, w, h);
          if (eps / sensitivity(o, w, h) < 20) EXPECT_GT(certified, expected * (1 - 1e-4)) << where;
          else EXPECT_GT(certified, 0.0) << where;
        }
      }
  ImageDpOptions none = image_dp_preset('A', std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isinf(ImageDp(none).certified_epsilon(64, 128)));
}

}  // namespace
}  // namespace ppreid::deid
