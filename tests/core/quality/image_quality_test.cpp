#include "core/quality/image_quality.h"

#include <gtest/gtest.h>

#include <cmath>
#include <opencv2/imgproc.hpp>

#include "core/quality/detectability.h"
#include "core/util/error.h"

namespace ppreid::quality {
namespace {

// Fixed 16x20 gray patterns; reference values from scikit-image 0.19.3:
// structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
// data_range=255).
cv::Mat pattern(int kind) {
  cv::Mat m(16, 20, CV_8U);
  for (int y = 0; y < 16; ++y)
    for (int x = 0; x < 20; ++x) {
      int a = (x * 37 + y * 11) % 256;
      int v = kind == 0 ? a
            : kind == 1 ? (x * 13 + y * 29) % 256
                        : std::clamp(a + (x * y * 7) % 61 - 30, 0, 255);
      m.at<std::uint8_t>(y, x) = static_cast<std::uint8_t>(v);
    }
  return m;
}

TEST(Ssim, MatchesScikitImage) {
  EXPECT_NEAR(ssim(pattern(0), pattern(1)), 0.02841289261648249, 1e-9);
  EXPECT_NEAR(ssim(pattern(0), pattern(2)), 0.9724152146125207, 1e-9);
  EXPECT_DOUBLE_EQ(ssim(pattern(2), pattern(2)), 1.0);
}

// Two constant images: variances and covariance are 0, so SSIM = (2ab + C1) / (a^2 + b^2 + C1)
// with C1 = (0.01 * 255)^2 = 6.5025; for 100 and 110 that is 22006.5025 / 22106.5025.
TEST(Ssim, ConstantPairByHand) {
  cv::Mat a(12, 12, CV_8U, cv::Scalar(100)), b(12, 12, CV_8U, cv::Scalar(110));
  EXPECT_NEAR(ssim(a, b), 22006.5025 / 22106.5025, 1e-12);
}

TEST(Ssim, ColourUsesLuminance) {
  cv::Mat bgr(32, 32, CV_8UC3);
  cv::randu(bgr, 0, 256);
  EXPECT_DOUBLE_EQ(ssim(bgr, bgr), 1.0);
  cv::Mat noisy = bgr.clone();
  cv::Mat noise(bgr.size(), CV_8UC3);
  cv::randu(noise, 0, 40);
  noisy += noise;
  double s = ssim(bgr, noisy);
  EXPECT_LT(s, 1.0);
  EXPECT_GT(s, 0.0);
  EXPECT_THROW(ssim(bgr, pattern(0)), Error);
  EXPECT_THROW(ssim(cv::Mat(8, 8, CV_8UC3), cv::Mat(8, 8, CV_8UC3)), Error);
}

TEST(Psnr, HandValues) {
  cv::Mat a(4, 4, CV_8UC3, cv::Scalar(10, 10, 10)), b(4, 4, CV_8UC3, cv::Scalar(20, 20, 20));
  // MSE 100: PSNR = 10 log10(65025 / 100).
  EXPECT_NEAR(psnr(a, b), 10.0 * std::log10(650.25), 1e-12);
  EXPECT_TRUE(std::isinf(psnr(a, a)));
}

TEST(Detectability, RatioAndEmptyImages) {
  Detectability d{10, 4, 12};
  EXPECT_DOUBLE_EQ(d.ratio(), 0.4);
  EXPECT_TRUE(std::isnan(Detectability{0, 0, 5}.ratio()));
  // A flat grey crop has no gradients, so HOG cannot see a person in it.
  PeopleDetector detector;
  EXPECT_FALSE(detector.person_in_crop(cv::Mat(128, 64, CV_8UC3, cv::Scalar(128, 128, 128))));
  EXPECT_EQ(detector.count_in_frame(cv::Mat(240, 320, CV_8UC3, cv::Scalar(128, 128, 128))), 0);
}

}  // namespace
}  // namespace ppreid::quality
