#include "core/deid/baselines.h"

#include <gtest/gtest.h>

#include <functional>

#include "core/deid/image_dp.h"
#include "core/util/error.h"

namespace ppreid::deid {
namespace {

struct MethodCase {
  std::string name;
  std::function<std::unique_ptr<Deidentifier>()> make;
};

class BaselineTest : public ::testing::TestWithParam<MethodCase> {};

TEST_P(BaselineTest, KeepsSizeAndTypeAndChangesSomething) {
  auto method = GetParam().make();
  EXPECT_EQ(method->name(), GetParam().name);
  for (cv::Size size : {cv::Size(64, 128), cv::Size(32, 64), cv::Size(37, 91)}) {
    cv::Mat img(size, CV_8UC3);
    cv::randu(img, 0, 256);
    cv::Mat out = method->apply(img, {});
    EXPECT_EQ(out.size(), img.size());
    EXPECT_EQ(out.type(), CV_8UC3);
    double diff = cv::norm(out, img, cv::NORM_L1);
    if (GetParam().name == "none")
      EXPECT_EQ(diff, 0.0);
    else
      EXPECT_GT(diff, 0.0) << GetParam().name;
  }
  EXPECT_THROW(method->apply(cv::Mat(), {}), Error);
  EXPECT_FALSE(method->parameters().is_null());
}

INSTANTIATE_TEST_SUITE_P(
    All, BaselineTest,
    ::testing::Values(
        MethodCase{"none", [] { return std::make_unique<Identity>(); }},
        MethodCase{"blur", [] { return std::make_unique<GaussianBlur>(11, 5); }},
        MethodCase{"blur", [] { return std::make_unique<GaussianBlur>(25, 25); }},
        MethodCase{"pixelate", [] { return std::make_unique<Pixelate>(4); }},
        MethodCase{"quantize", [] { return std::make_unique<Quantize>(4); }},
        MethodCase{"remove-head", [] { return std::make_unique<RemoveRegion>(BodyRegion::kHead); }},
        MethodCase{"remove-body", [] { return std::make_unique<RemoveRegion>(BodyRegion::kBody); }},
        MethodCase{"dp", [] {
                     ImageDpOptions o = image_dp_preset('B', 1e6);
                     o.seed = 3;
                     return std::make_unique<ImageDp>(o);
                   }}),
    [](const auto& info) { return std::to_string(info.index); });

TEST(Baselines, PixelateAndQuantizeByHand) {
  cv::Mat img(2, 2, CV_8UC3);
  img.at<cv::Vec3b>(0, 0) = {0, 10, 100};
  img.at<cv::Vec3b>(0, 1) = {2, 10, 101};
  img.at<cv::Vec3b>(1, 0) = {4, 10, 102};
  img.at<cv::Vec3b>(1, 1) = {6, 10, 103};
  cv::Mat p = Pixelate(2).apply(img, {});
  EXPECT_EQ(p.at<cv::Vec3b>(1, 1), cv::Vec3b(3, 10, 102));  // 101.5 rounds to 102
  // Dropping 4 bits: 100 -> 96 + 8 = 104, 10 -> 0 + 8 = 8, 0 -> 8.
  cv::Mat q = Quantize(4).apply(img, {});
  EXPECT_EQ(q.at<cv::Vec3b>(0, 0), cv::Vec3b(8, 8, 104));
  EXPECT_THROW(GaussianBlur(10, 5), UsageError);
  EXPECT_THROW(Pixelate(0), UsageError);
}

TEST(BodyRegions, FromKeypointsAndFallback) {
  cv::Size size(64, 128);
  cv::Rect head = region_box(BodyRegion::kHead, nullptr, size);
  EXPECT_EQ(head, cv::Rect(16, 0, 32, 26));  // top 20%, middle half
  data::Pose pose;
  pose[data::Joint::kNose] = {0.5f, 0.1f};
  pose[data::Joint::kNeck] = {0.5f, 0.2f};
  pose[data::Joint::kRShoulder] = {0.3f, 0.22f};
  pose[data::Joint::kLShoulder] = {0.7f, 0.22f};
  pose[data::Joint::kRHip] = {0.35f, 0.55f};
  pose[data::Joint::kLHip] = {0.65f, 0.55f};
  pose[data::Joint::kRAnkle] = {0.35f, 0.9f};
  EXPECT_TRUE(region_from_keypoints(BodyRegion::kHead, &pose));
  cv::Rect h = region_box(BodyRegion::kHead, &pose, size);
  EXPECT_TRUE(h.contains(cv::Point(32, 13)));        // the nose
  EXPECT_LE(h.br().y, static_cast<int>(0.2 * 128) + 1);  // stops at the neck
  cv::Rect b = region_box(BodyRegion::kBody, &pose, size);
  EXPECT_TRUE(b.contains(cv::Point(32, 60)));
  EXPECT_FALSE(b.contains(cv::Point(32, 10)));
  // Removing the head changes only head pixels.
  cv::Mat img(size, CV_8UC3);
  cv::randu(img, 0, 256);
  cv::Mat out = RemoveRegion(BodyRegion::kHead).apply(img, {nullptr, &pose, 0});
  cv::Mat diff;
  cv::absdiff(out, img, diff);
  cv::Mat outside = diff.clone();
  outside(h).setTo(0);
  EXPECT_EQ(cv::norm(outside, cv::NORM_INF), 0.0);
  EXPECT_GT(cv::norm(diff(h), cv::NORM_L1), 0.0);
}

}  // namespace
}  // namespace ppreid::deid
