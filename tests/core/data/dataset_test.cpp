#include "core/data/dataset.h"

#include <gtest/gtest.h>

#include <fstream>
#include <opencv2/imgcodecs.hpp>

#include "core/data/summary.h"
#include "core/util/error.h"
#include "tests/support/temp_dir.h"

namespace ppreid::data {
namespace {

namespace fs = std::filesystem;

void touch_image(const fs::path& path) {
  fs::create_directories(path.parent_path());
  cv::Mat img(16, 8, CV_8UC3, cv::Scalar(10, 20, 30));
  ASSERT_TRUE(cv::imwrite(path.string(), img));
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream(path) << text;
}

// A hand-made Market layout: 2 train ids, 1 test id, a distractor, junk and a Thumbs.db.
class DatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* f : {"0002_c1s1_000451_03.jpg", "0002_c2s1_000551_01.jpg",
                          "0007_c1s1_000100_01.jpg", "0007_c3s2_000200_01.jpg",
                          "-1_c1s1_000001_01.jpg"})
      touch_image(dir_ / "bounding_box_train" / f);
    touch_image(dir_ / "query" / "0011_c1s1_000300_01.jpg");
    for (const char* f : {"0011_c2s1_000400_01.jpg", "0000_c3s1_000500_01.jpg",
                          "-1_c2s1_000600_01.jpg"})
      touch_image(dir_ / "bounding_box_test" / f);
    write_text(dir_ / "bounding_box_train" / "Thumbs.db", "not an image");
  }
  testing::TempDir dir_;
};

TEST_F(DatasetTest, ReadsMarketLayout) {
  Dataset ds = load_dataset(dir_.path());
  EXPECT_EQ(ds.layout, Layout::kMarket1501);
  ASSERT_EQ(ds.train.size(), 4u);  // junk dropped, Thumbs.db ignored
  EXPECT_EQ(ds.num_train_ids, 2);
  // Sorted by name; labels contiguous in pid order.
  EXPECT_EQ(ds.train[0].path, "bounding_box_train/0002_c1s1_000451_03.jpg");
  EXPECT_EQ(ds.train[0].label, 0);
  EXPECT_EQ(ds.train[1].camid, 1);
  EXPECT_EQ(ds.train[2].pid, 7);
  EXPECT_EQ(ds.train[2].label, 1);
  EXPECT_EQ(ds.train[3].camid, 2);
  ASSERT_EQ(ds.query.size(), 1u);
  EXPECT_EQ(ds.query[0].label, -1);
  ASSERT_EQ(ds.gallery.size(), 2u);  // distractor kept, junk dropped
  EXPECT_EQ(ds.gallery[0].pid, 0);

  DatasetSummary s = summarize(ds);
  EXPECT_EQ(s.train.images, 4);
  EXPECT_EQ(s.train.ids, 2);
  EXPECT_EQ(s.train.cameras, 3);
  EXPECT_EQ(s.gallery.distractors, 1);
  EXPECT_EQ(s.gallery.ids, 1);
  EXPECT_EQ(s.total_ids, 3);
  EXPECT_EQ(s.to_json()["splits"]["query"]["images"], 1);
  EXPECT_NO_THROW(verify_images(ds, 2));
}

TEST_F(DatasetTest, ReadsSideFiles) {
  write_text(dir_ / "keypoints.csv",
             "image,nose_x,nose_y,neck_x,neck_y,r_shoulder_x,r_shoulder_y,r_elbow_x,r_elbow_y,"
             "r_wrist_x,r_wrist_y,l_shoulder_x,l_shoulder_y,l_elbow_x,l_elbow_y,l_wrist_x,"
             "l_wrist_y,r_hip_x,r_hip_y,r_knee_x,r_knee_y,r_ankle_x,r_ankle_y,l_hip_x,l_hip_y,"
             "l_knee_x,l_knee_y,l_ankle_x,l_ankle_y,r_eye_x,r_eye_y,l_eye_x,l_eye_y,r_ear_x,"
             "r_ear_y,l_ear_x,l_ear_y\n"
             "query/0011_c1s1_000300_01.jpg,0.5,0.1,0.5,0.2,0.3,0.2,0.3,0.4,0.3,0.5,0.7,0.2,"
             "0.7,0.4,0.7,0.5,0.4,0.5,0.4,0.7,0.4,0.9,0.6,0.5,0.6,0.7,0.6,0.9,0.45,0.08,0.55,"
             "0.08,-1,-1,-1,-1\n");
  write_text(dir_ / "attributes.csv",
             "pid,gender,hair_length,age_group,hat,backpack,bag,sleeve_length,lower_length,"
             "upper_color,lower_color\n11,female,long,adult,no,yes,no,short,long,red,blue\n");
  write_text(dir_ / "municipalities.csv", "camera,municipality\n1,1\n2,1\n3,2\n");
  Dataset ds = load_dataset(dir_.path());
  const Pose* pose = ds.pose(ds.query[0]);
  ASSERT_NE(pose, nullptr);
  EXPECT_FLOAT_EQ((*pose)[Joint::kRShoulder].x, 0.3f);
  EXPECT_FALSE((*pose)[Joint::kLEar].visible());
  EXPECT_TRUE(pose->has_torso());
  EXPECT_EQ(pose->visible_count(), 16);
  EXPECT_EQ(ds.pose(ds.train[0]), nullptr);
  ASSERT_EQ(ds.attributes.count(11), 1u);
  EXPECT_EQ(ds.attributes.at(11).gender, 1);
  EXPECT_TRUE(ds.attributes.at(11).backpack);
  EXPECT_EQ(ds.attributes.at(11).upper_color, "red");
  EXPECT_EQ(ds.camera_municipality.at(2), 1);
  DatasetSummary s = summarize(ds);
  EXPECT_EQ(s.query.with_keypoints, 1);
  EXPECT_EQ(s.attribute_ids, 1);
  EXPECT_EQ(s.municipalities, 2);
}

TEST_F(DatasetTest, ReadsDukeLayout) {
  testing::TempDir duke;
  touch_image(duke / "bounding_box_train" / "0005_c2_f0046985.jpg");
  touch_image(duke / "query" / "0009_c1_f0000001.jpg");
  touch_image(duke / "bounding_box_test" / "0009_c3_f0000002.jpg");
  Dataset ds = load_dataset(duke.path());
  EXPECT_EQ(ds.layout, Layout::kDukeMTMC);
  EXPECT_EQ(ds.train[0].pid, 5);
  EXPECT_EQ(ds.train[0].camid, 1);
}

// Each bad input must be refused with a message that points at the culprit.
struct BadCase {
  std::string what;
  std::function<void(const fs::path&)> damage;
  std::string expected_in_message;
};

class DatasetErrorTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(DatasetErrorTest, RefusesWithClearMessage) {
  testing::TempDir dir;
  touch_image(dir / "bounding_box_train" / "0002_c1s1_000451_03.jpg");
  touch_image(dir / "query" / "0011_c1s1_000300_01.jpg");
  touch_image(dir / "bounding_box_test" / "0011_c2s1_000400_01.jpg");
  GetParam().damage(dir.path());
  try {
    load_dataset(dir.path());
    FAIL() << "expected an error for: " << GetParam().what;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(GetParam().expected_in_message), std::string::npos)
        << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, DatasetErrorTest,
    ::testing::Values(
        BadCase{"missing query split", [](const fs::path& d) { fs::remove_all(d / "query"); },
                "query' is missing"},
        BadCase{"empty gallery",
                [](const fs::path& d) {
                  fs::remove_all(d / "bounding_box_test");
                  fs::create_directories(d / "bounding_box_test");
                },
                "is empty"},
        BadCase{"malformed name",
                [](const fs::path& d) { touch_image(d / "query" / "person_7.jpg"); },
                "query/person_7.jpg' does not follow"},
        BadCase{"only junk in train",
                [](const fs::path& d) {
                  fs::remove(d / "bounding_box_train" / "0002_c1s1_000451_03.jpg");
                  touch_image(d / "bounding_box_train" / "-1_c1s1_000451_03.jpg");
                },
                "no usable images"},
        BadCase{"bad keypoints header",
                [](const fs::path& d) { write_text(d / "keypoints.csv", "image,x,y\n"); },
                "keypoints.csv:1: unexpected header"},
        BadCase{"bad attribute word",
                [](const fs::path& d) {
                  write_text(d / "attributes.csv",
                             "pid,gender,hair_length,age_group,hat,backpack,bag,sleeve_length,"
                             "lower_length,upper_color,lower_color\n"
                             "11,female,long,adult,no,maybe,no,short,long,red,blue\n");
                },
                "attributes.csv:2: column 'backpack': 'maybe'"},
        BadCase{"municipality not 1-based",
                [](const fs::path& d) {
                  write_text(d / "municipalities.csv", "camera,municipality\n0,1\n");
                },
                "municipalities.csv:2"}));

TEST(Dataset, MissingDirectoryIsAnError) {
  EXPECT_THROW(load_dataset("/nonexistent/ppreid/dataset"), Error);
}

TEST_F(DatasetTest, CorruptImageIsNamed) {
  write_text(dir_ / "query" / "0011_c3s1_000301_01.jpg", "garbage bytes");
  Dataset ds = load_dataset(dir_.path());
  try {
    verify_images(ds, 2);
    FAIL() << "corrupt image not detected";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("0011_c3s1_000301_01.jpg"), std::string::npos);
  }
}

}  // namespace
}  // namespace ppreid::data
