#include "core/util/image.h"

#include <gtest/gtest.h>

#include <fstream>
#include <opencv2/imgcodecs.hpp>

#include "core/util/error.h"
#include "tests/support/temp_dir.h"

namespace ppreid::util {
namespace {

TEST(ImageDecode, ReadsPngAndNamesPathOnFailure) {
  testing::TempDir dir;
  cv::Mat image(5, 7, CV_8UC3);
  cv::randu(image, 0, 256);
  const auto png = dir / "ok.png";
  ASSERT_TRUE(cv::imwrite(png.string(), image));
  EXPECT_EQ(cv::norm(decode_image(png), image, cv::NORM_INF), 0.0);

  const auto missing = dir / "missing.jpg";
  try {
    decode_image(missing);
    FAIL() << "expected ppreid::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(missing.string()), std::string::npos) << e.what();
  }

  const auto corrupt = dir / "corrupt.jpg";
  std::ofstream(corrupt, std::ios::binary) << "this is not a JPEG at all";
  try {
    decode_image(corrupt);
    FAIL() << "expected ppreid::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(corrupt.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("cannot decode"), std::string::npos) << e.what();
  }
  EXPECT_THROW(decode_image(dir.path()), Error);  // a directory is not an image
}

TEST(ImageDecode, GrayscaleFileBecomesThreeChannels) {
  testing::TempDir dir;
  const auto path = dir / "gray.png";
  ASSERT_TRUE(cv::imwrite(path.string(), cv::Mat(3, 3, CV_8UC1, cv::Scalar(77))));
  const cv::Mat m = decode_image(path);
  EXPECT_EQ(m.type(), CV_8UC3);
  EXPECT_EQ(m.at<cv::Vec3b>(1, 1), cv::Vec3b(77, 77, 77));
}

}  // namespace
}  // namespace ppreid::util
