#include "core/tensor/image_tensor.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <opencv2/imgcodecs.hpp>

#include "core/util/error.h"

namespace ppreid::tensor {
namespace {

constexpr ChannelStats kHalf = {0.5f, 0.5f, 0.5f};
constexpr ChannelStats kImagenetMean = {0.485f, 0.456f, 0.406f};
constexpr ChannelStats kImagenetStd = {0.229f, 0.224f, 0.225f};

// A 2x2 BGR image whose pixels are easy to normalize by hand.
cv::Mat two_by_two() {
  cv::Mat m(2, 2, CV_8UC3);
  m.at<cv::Vec3b>(0, 0) = {0, 0, 255};     // pure red (BGR order)
  m.at<cv::Vec3b>(0, 1) = {255, 0, 0};     // pure blue
  m.at<cv::Vec3b>(1, 0) = {0, 255, 0};     // pure green
  m.at<cv::Vec3b>(1, 1) = {51, 102, 204};  // B=0.2, G=0.4, R=0.8
  return m;
}

struct PixelCase {
  int row, col;
  float r, g, b;  // expected tensor values, RGB
};

TEST(ImageToTensor, TwoByTwoWithHalfStatsIsRgbInMinusOneToOne) {
  // (x/255 - 0.5) / 0.5 = 2x/255 - 1.
  const PixelCase cases[] = {
      {0, 0, 1.f, -1.f, -1.f},
      {0, 1, -1.f, -1.f, 1.f},
      {1, 0, -1.f, 1.f, -1.f},
      {1, 1, 0.6f, -0.2f, -0.6f},
  };
  const torch::Tensor t = image_to_tensor(two_by_two(), kHalf, kHalf);
  ASSERT_EQ(t.sizes(), (std::vector<int64_t>{3, 2, 2}));
  ASSERT_EQ(t.scalar_type(), torch::kFloat32);
  ASSERT_TRUE(t.is_contiguous());
  for (const auto& c : cases) {
    SCOPED_TRACE("pixel " + std::to_string(c.row) + "," + std::to_string(c.col));
    EXPECT_NEAR(t[0][c.row][c.col].item<float>(), c.r, 1e-6);
    EXPECT_NEAR(t[1][c.row][c.col].item<float>(), c.g, 1e-6);
    EXPECT_NEAR(t[2][c.row][c.col].item<float>(), c.b, 1e-6);
  }
}

TEST(ImageToTensor, ImagenetStatsHandComputed) {
  const torch::Tensor t = image_to_tensor(two_by_two(), kImagenetMean, kImagenetStd);
  // Pixel (1,1): R = (0.8 - 0.485) / 0.229, G = (0.4 - 0.456) / 0.224, B = (0.2 - 0.406) / 0.225.
  EXPECT_NEAR(t[0][1][1].item<float>(), 1.3755459f, 1e-5);
  EXPECT_NEAR(t[1][1][1].item<float>(), -0.25f, 1e-5);
  EXPECT_NEAR(t[2][1][1].item<float>(), -0.9155556f, 1e-5);
  // Pixel (0,0) is pure red: R = (1 - 0.485) / 0.229, G = -0.456 / 0.224.
  EXPECT_NEAR(t[0][0][0].item<float>(), 2.2489083f, 1e-5);
  EXPECT_NEAR(t[1][0][0].item<float>(), -2.0357143f, 1e-5);
}

TEST(ImageToTensor, RoundTripIsExact) {
  cv::Mat image(37, 23, CV_8UC3);
  cv::randu(image, 0, 256);
  const cv::Mat back = tensor_to_image(image_to_tensor(image, kImagenetMean, kImagenetStd),
                                       kImagenetMean, kImagenetStd);
  ASSERT_EQ(back.type(), CV_8UC3);
  ASSERT_EQ(back.size(), image.size());
  EXPECT_EQ(cv::norm(image, back, cv::NORM_INF), 0.0);
}

TEST(ImageToTensor, RoiOfLargerImageMatchesItsCopy) {
  cv::Mat big(40, 30, CV_8UC3);
  cv::randu(big, 0, 256);
  const cv::Mat roi = big(cv::Rect(3, 5, 11, 17));  // not continuous
  ASSERT_FALSE(roi.isContinuous());
  EXPECT_TRUE(
      torch::equal(image_to_tensor(roi, kHalf, kHalf), image_to_tensor(roi.clone(), kHalf, kHalf)));
}

TEST(ImageToTensor, WritesIntoRowOfBatch) {
  torch::Tensor batch = torch::zeros({2, 3, 2, 2});
  torch::Tensor row = batch[1];
  image_to_tensor_into(two_by_two(), kHalf, kHalf, row);
  EXPECT_TRUE(torch::equal(batch[1], image_to_tensor(two_by_two(), kHalf, kHalf)));
  EXPECT_EQ(batch[0].abs().sum().item<float>(), 0.f);
}

TEST(ImageToTensor, RejectsWrongInputs) {
  EXPECT_THROW(image_to_tensor(cv::Mat(), kHalf, kHalf), Error);
  EXPECT_THROW(image_to_tensor(cv::Mat(2, 2, CV_8UC1, cv::Scalar(0)), kHalf, kHalf), Error);
  EXPECT_THROW(image_to_tensor(cv::Mat(2, 2, CV_32FC3, cv::Scalar(0)), kHalf, kHalf), Error);
  EXPECT_THROW(image_to_tensor(two_by_two(), kHalf, {0.5f, 0.f, 0.5f}), Error);
  torch::Tensor wrong = torch::empty({3, 2, 3});
  EXPECT_THROW(image_to_tensor_into(two_by_two(), kHalf, kHalf, wrong), Error);
  torch::Tensor strided = torch::empty({3, 2, 4}).slice(2, 0, 4, 2);
  EXPECT_THROW(image_to_tensor_into(two_by_two(), kHalf, kHalf, strided), Error);
}

TEST(ImageFromTensor, ClampsAndConvertsToBgr) {
  torch::Tensor t = torch::zeros({3, 1, 3});
  t[0][0][0] = 5.f;   // R far above 1 after de-normalization -> 255
  t[1][0][1] = -5.f;  // G far below 0 -> 0
  t[2][0][2] = 0.2f;  // B = 255 * (0.2 * 0.5 + 0.5) = 153
  const cv::Mat m = tensor_to_image(t, kHalf, kHalf);
  EXPECT_EQ(m.at<cv::Vec3b>(0, 0), cv::Vec3b(128, 128, 255));  // 127.5 rounds to 128
  EXPECT_EQ(m.at<cv::Vec3b>(0, 1), cv::Vec3b(128, 0, 128));
  EXPECT_EQ(m.at<cv::Vec3b>(0, 2), cv::Vec3b(153, 128, 128));
}

TEST(ImageFromTensor, AcceptsNonContiguousGradDoubleTensors) {
  cv::Mat image(6, 4, CV_8UC3);
  cv::randu(image, 0, 256);
  torch::Tensor t = image_to_tensor(image, kHalf, kHalf);
  // A transposed double copy that requires grad, transposed back: same values, odd layout.
  torch::Tensor odd = t.transpose(1, 2).to(torch::kFloat64).contiguous().transpose(1, 2);
  odd.requires_grad_(true);
  ASSERT_FALSE(odd.is_contiguous());
  EXPECT_EQ(cv::norm(tensor_to_image(odd, kHalf, kHalf), image, cv::NORM_INF), 0.0);
  EXPECT_THROW(tensor_to_image(torch::zeros({1, 3, 2, 2}), kHalf, kHalf), Error);
  EXPECT_THROW(tensor_to_image(torch::Tensor(), kHalf, kHalf), Error);
}

}  // namespace
}  // namespace ppreid::tensor
