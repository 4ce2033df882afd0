#include "core/deid/deid_runner.h"

#include <gtest/gtest.h>

#include <fstream>
#include <opencv2/imgcodecs.hpp>

#include "core/deid/baselines.h"
#include "core/deid/image_dp.h"
#include "core/util/atomic_file.h"
#include "core/util/error.h"
#include "tests/core/deid/deid_run_fixture.h"

namespace ppreid::deid {
namespace {

namespace fs = std::filesystem;

void write_image(const fs::path& path, int seed) {
  fs::create_directories(path.parent_path());
  cv::Mat img(64, 32, CV_8UC3);
  cv::theRNG().state = static_cast<std::uint64_t>(seed) + 1;
  cv::randu(img, 0, 256);
  ASSERT_TRUE(cv::imwrite(path.string(), img));
}

class DeidRunnerTest : public DeidRunFixture {
 protected:
  void SetUp() override {
    int s = 0;
    for (const char* f : {"0001_c1s1_000001_01.jpg", "0001_c2s1_000002_01.jpg",
                          "0002_c1s1_000003_01.jpg", "0002_c2s1_000004_01.png"})
      write_image(in() / "bounding_box_train" / f, s++);
    write_image(in() / "query" / "0003_c1s1_000005_01.jpg", s++);
    write_image(in() / "bounding_box_test" / "0003_c2s1_000006_01.jpg", s++);
    write_image(in() / "bounding_box_test" / "0000_c2s1_000007_01.jpg", s++);
    util::write_file_atomic(in() / "attributes.csv",
                            "pid,gender,hair_length,age_group,hat,backpack,bag,sleeve_length,"
                            "lower_length,upper_color,lower_color\n"
                            "1,male,short,adult,no,no,no,long,long,red,blue\n");
  }
};

TEST_F(DeidRunnerTest, WritesSameLayoutManifestAndSideFiles) {
  ImageDpOptions dp = image_dp_preset('A', 1e5);
  dp.seed = 5;
  ImageDp method(dp);
  DeidRunOptions o = options();
  o.report = dir_ / "quality.json";
  DeidReport report = deidentify_dataset(method, o);
  EXPECT_EQ(report.images, 7);
  for (const char* f : {"bounding_box_train/0002_c2s1_000004_01.png", "query/0003_c1s1_000005_01.jpg",
                        "bounding_box_test/0000_c2s1_000007_01.jpg", "deid.json"})
    EXPECT_TRUE(fs::exists(out() / f)) << f;
  // Attributes describe the raw images: image DP does not pass them on.
  EXPECT_FALSE(fs::exists(out() / "attributes.csv"));
  EXPECT_FALSE(fs::exists(out() / "deid.partial.json"));
  auto m = nlohmann::json::parse(util::read_file(out() / "deid.json"));
  EXPECT_EQ(m["method"], "dp");
  EXPECT_FALSE(m.contains("seed"));
  EXPECT_EQ(m["private"], false);
  EXPECT_EQ(m["dropped_side_files"], nlohmann::json::array({"attributes.csv"}));
  EXPECT_EQ(m["sensitivity"][0]["delta"], 32.0 * 64 * 3 * 3);  // tight, 32x64, L = 4
  EXPECT_LE(m["sensitivity"][0]["certified_epsilon"].get<double>(), 1e5);
  EXPECT_GT(m["sensitivity"][0]["certified_epsilon"].get<double>(), 1e5 * (1 - 1e-6));
  EXPECT_EQ(m["images"], 7);
  EXPECT_NE(m["release"].get<std::string>().find("once"), std::string::npos);
  EXPECT_LT(report.mean_ssim, 1.0);
  auto q = nlohmann::json::parse(util::read_file(dir_ / "quality.json"));
  EXPECT_EQ(q["images"].size(), 7u);
  EXPECT_DOUBLE_EQ(q["mean_ssim"].get<double>(), report.mean_ssim);
  cv::Mat a = cv::imread((in() / "query/0003_c1s1_000005_01.jpg").string());
  cv::Mat b = cv::imread((out() / "query/0003_c1s1_000005_01.jpg").string());
  EXPECT_EQ(a.size(), b.size());
  EXPECT_GT(cv::norm(a, b, cv::NORM_L1), 0.0);
  // The same run again into the same directory is refused.
  EXPECT_THROW(deidentify_dataset(method, options()), Error);
}

TEST_F(DeidRunnerTest, OutputInsideInputIsRefusedBeforeWriting) {
  Identity method;
  DeidRunOptions o = options();
  o.out = in() / "deid";
  EXPECT_THROW(deidentify_dataset(method, o), UsageError);
  EXPECT_FALSE(fs::exists(o.out));
  o.out = in();
  EXPECT_THROW(deidentify_dataset(method, o), UsageError);
}

TEST_F(DeidRunnerTest, UnreadableImageLeavesNothing) {
  std::ofstream(in() / "query" / "0003_c3s1_000009_01.jpg") << "not a jpeg";
  GaussianBlur method(11, 5);
  try {
    deidentify_dataset(method, options());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("0003_c3s1_000009_01.jpg"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(out_is_empty());
}

TEST_F(DeidRunnerTest, ResumeFinishesWithoutReleasingTwice) {
  ImageDpOptions dp = image_dp_preset('A', 1e5);  // CSPRNG: a second release would differ
  ImageDp method(dp);
  deidentify_dataset(method, options());
  // Simulate an interruption: the marker is back and one image is missing.
  fs::path kept = out() / "query/0003_c1s1_000005_01.jpg";
  std::string kept_bytes = util::read_file(kept);
  fs::remove(out() / "bounding_box_test/0003_c2s1_000006_01.jpg");
  fs::remove(out() / "deid.json");
  util::write_file_atomic(out() / "deid.partial.json",
                          nlohmann::json{{"method", method.name()}, {"parameters", method.parameters()}}.dump());
  EXPECT_THROW(deidentify_dataset(method, options()), Error);  // needs --resume
  DeidRunOptions o = options();
  o.resume = true;
  DeidReport r = deidentify_dataset(method, o);
  EXPECT_EQ(r.images, 1);
  EXPECT_EQ(r.resumed, 6);
  EXPECT_EQ(util::read_file(kept), kept_bytes);
  EXPECT_TRUE(fs::exists(out() / "bounding_box_test/0003_c2s1_000006_01.jpg"));
  // Resuming with different parameters is refused.
  fs::remove(out() / "bounding_box_test/0003_c2s1_000006_01.jpg");
  util::write_file_atomic(out() / "deid.partial.json",
                          nlohmann::json{{"method", method.name()}, {"parameters", method.parameters()}}.dump());
  ImageDp other(image_dp_preset('B', 1e5));
  EXPECT_THROW(deidentify_dataset(other, o), Error);
}

}  // namespace
}  // namespace ppreid::deid
