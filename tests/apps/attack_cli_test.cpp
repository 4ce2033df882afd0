// `ppreid attack idlg|dlg` as a researcher runs it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <string>
#include <utility>
#include <vector>

#include "tests/support/run_cli.h"
#include "tests/support/temp_dir.h"

namespace ppreid {
namespace {

using ::testing::HasSubstr;

class AttackCliTest : public ::testing::Test {
 protected:
  AttackCliTest() {
    cv::Mat img(32, 32, CV_8UC3, cv::Scalar(90, 140, 200));
    cv::rectangle(img, {6, 4}, {18, 26}, {20, 30, 220}, cv::FILLED);
    cv::imwrite((dir_ / "raw.png").string(), img);
    cv::GaussianBlur(img, img, {7, 7}, 3);
    cv::imwrite((dir_ / "deid.png").string(), img);
  }
  std::string image(const char* name) const { return (dir_ / name).string(); }
  testing::TempDir dir_;
};

TEST_F(AttackCliTest, IdlgPrintsTheMeasuresAgainstRawAndDeidentifiedImages) {
  auto r = testing::run_ppreid("attack idlg --image " + image("raw.png") + " --deid-image " +
                               image("deid.png") + " --label 4 --iterations 3 --json --strip " +
                               image("strip.png"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out.substr(r.out.find('{')));
  EXPECT_EQ(j["label_inferred"], 4);
  EXPECT_EQ(j["label_correct"], true);
  EXPECT_LE(j["iterations"].get<int>(), 3);
  for (const char* key : {"mse_raw", "psnr_raw", "ssim_raw", "mse_deid", "psnr_deid",
                          "ssim_deid", "seconds", "gradient_distance"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_TRUE(j["success_raw"].contains("1e-3"));
  // raw | de-identified | steps 1, 10 (capped by --iterations) | final, each 4x.
  cv::Mat strip = cv::imread(image("strip.png"));
  EXPECT_EQ(strip.rows, 128);
  EXPECT_EQ(strip.cols % 128, 0);
}

TEST_F(AttackCliTest, IdlgOnTheReidBackbonePrintsTheSameMeasures) {
  auto r = testing::run_ppreid("attack idlg --model reid --image " + image("raw.png") +
                               " --deid-image " + image("deid.png") +
                               " --label 2 --iterations 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out.substr(r.out.find('{')));
  EXPECT_EQ(j["model"], "reid");
  EXPECT_EQ(j["arch"], "resnet_tiny");
  EXPECT_EQ(j["height"], 16);  // the reid default input
  EXPECT_EQ(j["width"], 12);
  EXPECT_EQ(j["label_correct"], true);
  EXPECT_EQ(j["iterations"], 1);
  for (const char* key : {"mse_raw", "psnr_raw", "ssim_raw", "mse_deid", "psnr_deid",
                          "ssim_deid", "seconds", "gradient_distance"})
    EXPECT_TRUE(j.contains(key)) << key;
}

TEST_F(AttackCliTest, BadModelAndSizeCombinationsAreUsageErrors) {
  const std::string base = "attack idlg --iterations 1 --image " + image("raw.png");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {" --model reid --size 32", "--size"},
      {" --model lenet --height 32 --width 16", "square"},
      {" --height 32", "square"},
      {" --size 32 --height 32 --width 32", "--size"},
      {" --model lenet --arch resnet18", "--arch"},
      {" --model reid --arch resnet99", "--arch"},
      {" --model reid --width 4", "--width"},
  };
  for (const auto& [flags, message] : cases) {
    auto r = testing::run_ppreid(base + flags);
    EXPECT_EQ(r.exit_code, 2) << flags << ": " << r.out;
    EXPECT_THAT(r.out, HasSubstr(message)) << flags;
  }
}

TEST_F(AttackCliTest, BadRequestsAreUsageErrors) {
  auto r = testing::run_ppreid("attack idlg --image " + image("raw.png") + " --model resnet");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("lenet"));
  EXPECT_THAT(r.out, HasSubstr("reid"));
  r = testing::run_ppreid("attack dlg --image " + image("raw.png") + " --label 10 --classes 10");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("--label"));
  r = testing::run_ppreid("attack idlg --image " + image("nothere.png"));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("nothere.png"));
}

}  // namespace
}  // namespace ppreid
