#include <gtest/gtest.h>

#include "core/data/attributes.h"
#include "core/data/keypoints.h"
#include "core/util/atomic_file.h"
#include "core/util/error.h"
#include "tests/support/temp_dir.h"

namespace ppreid::data {
namespace {

TEST(Keypoints, CsvRoundTrip) {
  Pose pose;
  pose[Joint::kNose] = {0.5f, 0.125f};
  pose[Joint::kRHip] = {0.25f, 0.5f};
  testing::TempDir dir;
  util::write_file_atomic(dir / "keypoints.csv",
                          format_keypoints_csv({{"query/0001_c1s1_000001_01.jpg", pose}}));
  KeypointTable table = read_keypoints_csv(dir / "keypoints.csv");
  ASSERT_EQ(table.size(), 1u);
  const Pose& back = table.at("query/0001_c1s1_000001_01.jpg");
  EXPECT_FLOAT_EQ(back[Joint::kNose].y, 0.125f);
  EXPECT_FLOAT_EQ(back[Joint::kRHip].x, 0.25f);
  EXPECT_FALSE(back[Joint::kLAnkle].visible());
  EXPECT_EQ(back.visible_count(), 2);
  EXPECT_STREQ(joint_name(static_cast<int>(Joint::kLEar)), "l_ear");
}

TEST(Keypoints, RejectsUnnormalizedCoordinates) {
  Pose pose;
  pose[Joint::kNose] = {0.5f, 0.1f};
  std::string csv = format_keypoints_csv({{"a.jpg", pose}});
  csv.replace(csv.find("0.5000"), 6, "32.000");  // pixel coordinates instead of [0,1]
  testing::TempDir dir;
  util::write_file_atomic(dir / "keypoints.csv", csv);
  try {
    read_keypoints_csv(dir / "keypoints.csv");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("keypoints.csv:2: column 'nose_x'"), std::string::npos)
        << e.what();
  }
}

TEST(Attributes, CsvRoundTrip) {
  AttributeTable table;
  Attributes a;
  a.gender = 1;
  a.hair_length = 1;
  a.age_group = 3;
  a.hat = true;
  a.bag = true;
  a.sleeve_length = 0;
  a.lower_length = 0;
  a.upper_color = "purple";
  a.lower_color = "brown";
  table[3] = a;
  table[12] = Attributes{};
  testing::TempDir dir;
  util::write_file_atomic(dir / "attributes.csv", format_attributes_csv(table));
  EXPECT_EQ(read_attributes_csv(dir / "attributes.csv"), table);
}

TEST(AtomicFile, ReplacesWholeFileAndLeavesNoTemporaries) {
  testing::TempDir dir;
  util::write_file_atomic(dir / "f.txt", "first");
  util::write_file_atomic(dir / "f.txt", "second");
  EXPECT_EQ(util::read_file(dir / "f.txt"), "second");
  int files = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(dir.path())) ++files;
  EXPECT_EQ(files, 1);
  // A writer that fails leaves the old contents and no temporary behind.
  EXPECT_THROW(util::write_atomic_with(dir / "f.txt",
                                       [](const std::filesystem::path&) {
                                         throw Error("encoder failed");
                                       }),
               Error);
  EXPECT_EQ(util::read_file(dir / "f.txt"), "second");
  EXPECT_THROW(util::write_file_atomic(dir / "missing-dir/f.txt", "x"), Error);
}

}  // namespace
}  // namespace ppreid::data
