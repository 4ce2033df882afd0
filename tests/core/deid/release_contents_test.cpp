// What a `ppreid deid` release folder may hold (issue 18): de-identified images, the side files
// the method passes on, and a manifest that does not depend on the raw pixels; never a quality
// figure or a seed. Every file of each release is read and checked.
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>

#include <filesystem>
#include <set>

#include "core/data/synth/generator.h"
#include "core/deid/deid_runner.h"
#include "core/deid/method_factory.h"
#include "core/util/atomic_file.h"
#include "tests/support/synth.h"
#include "tests/support/temp_dir.h"

namespace ppreid::deid {
namespace {

namespace fs = std::filesystem;

constexpr std::uint64_t kSeed = 987654321;

// The manifest fields a release may carry; anything else is a new field to review first.
const std::set<std::string> kManifestFields = {
    "method", "parameters", "software", "private", "private_note", "layout", "images",
    "renamed_images", "skipped_count", "skipped", "dropped_side_files", "released_this_run",
    "resumed", "epsilon_per_image", "certified_epsilon_per_image", "certificate", "sensitivity",
    "release"};

struct ReleaseCase {
  const char* what;
  MethodSpec spec;
  std::set<std::string> side_files;  // what the release carries besides images and deid.json
};

MethodSpec spec_of(const char* method, std::optional<std::uint64_t> seed = std::nullopt) {
  MethodSpec s;
  s.method = method;
  s.seed = seed;
  if (std::string(method) == "dp") {
    s.preset = "A";
    s.epsilon = 1e4;
  }
  return s;
}

// The same dataset with every pixel inverted: same names, sizes and side files, other pixels.
void write_inverted_copy(const fs::path& from, const fs::path& to) {
  fs::copy(from, to, fs::copy_options::recursive);
  for (const auto& e : fs::recursive_directory_iterator(to)) {
    const std::string ext = e.path().extension().string();
    if (ext != ".jpg" && ext != ".png") continue;
    cv::Mat img = cv::imread(e.path().string());
    ASSERT_FALSE(img.empty()) << e.path();
    cv::Mat inverted = cv::Scalar::all(255) - img;
    ASSERT_TRUE(cv::imwrite(e.path().string(), inverted));
  }
}

bool is_image(const fs::path& p) {
  const std::string ext = p.extension().string();
  return ext == ".jpg" || ext == ".png";
}

class ReleaseContentsTest : public ::testing::TestWithParam<ReleaseCase> {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir;
    data::synth::SynthOptions o = testing::small_synth(4, 2, 4, 64, 32, 5, /*threads=*/1);
    o.distractors = 1;
    data::synth::generate(o, raw_a());
    write_inverted_copy(raw_a(), raw_b());
  }
  static void TearDownTestSuite() { delete dir_; }
  static fs::path raw_a() { return dir_->path() / "raw-a"; }
  static fs::path raw_b() { return dir_->path() / "raw-b"; }

  DeidReport release(const fs::path& raw, const std::string& name) {
    auto method = make_deidentifier(GetParam().spec);
    DeidRunOptions o;
    o.in = raw;
    o.out = dir_->path() / name;
    o.report = dir_->path() / "private" / (name + ".quality.json");
    o.threads = 1;
    return deidentify_dataset(*method, o);
  }
  static testing::TempDir* dir_;
};
testing::TempDir* ReleaseContentsTest::dir_ = nullptr;

TEST_P(ReleaseContentsTest, HoldsNothingDerivedFromRawPixelsAndNoSeed) {
  const ReleaseCase& c = GetParam();
  const std::string name = std::string(c.what);
  release(raw_a(), name + "-a");
  release(raw_b(), name + "-b");
  const fs::path out_a = dir_->path() / (name + "-a"), out_b = dir_->path() / (name + "-b");

  int images = 0;
  std::set<std::string> side;
  for (const auto& e : fs::recursive_directory_iterator(out_a)) {
    if (e.is_directory()) continue;
    const fs::path rel = fs::relative(e.path(), out_a);
    if (is_image(rel)) {
      ++images;
      EXPECT_TRUE(fs::exists(out_b / rel)) << rel;
      continue;
    }
    ASSERT_EQ(rel.parent_path(), fs::path()) << "a non-image file in a split folder: " << rel;
    const std::string text = util::read_file(e.path());
    EXPECT_EQ(text.find(std::to_string(kSeed)), std::string::npos) << "the seed is in " << rel;
    EXPECT_EQ(text.find("ssim"), std::string::npos) << rel;
    EXPECT_EQ(text.find("psnr"), std::string::npos) << rel;
    if (rel == kReleaseManifest) continue;
    side.insert(rel.string());
  }
  EXPECT_GT(images, 0);
  EXPECT_EQ(side, c.side_files);

  // The manifest: only reviewed fields, and byte-identical for two datasets that differ in
  // every pixel (so no field can depend on them).
  const std::string manifest_a = util::read_file(out_a / kReleaseManifest);
  EXPECT_EQ(manifest_a, util::read_file(out_b / kReleaseManifest));
  const auto m = nlohmann::json::parse(manifest_a);
  for (const auto& [key, value] : m.items()) EXPECT_TRUE(kManifestFields.count(key)) << key;
  EXPECT_EQ(m["private"], !c.spec.seed.has_value());

  // The figures computed from raw pixels went to the report, outside the release.
  const auto q = nlohmann::json::parse(
      util::read_file(dir_->path() / "private" / (name + "-a.quality.json")));
  EXPECT_EQ(q["derived_from_raw_data"], true);
  EXPECT_EQ(q["images"].size(), static_cast<size_t>(images));
}

INSTANTIATE_TEST_SUITE_P(
    Methods, ReleaseContentsTest,
    ::testing::Values(
        ReleaseCase{"dp-csprng", spec_of("dp"), {"municipalities.csv"}},
        ReleaseCase{"dp-seeded", spec_of("dp", kSeed), {"municipalities.csv"}},
        ReleaseCase{"blur", spec_of("blur"),
                    {"keypoints.csv", "attributes.csv", "municipalities.csv"}},
        ReleaseCase{"pixelate", spec_of("pixelate"),
                    {"keypoints.csv", "attributes.csv", "municipalities.csv"}}),
    [](const ::testing::TestParamInfo<ReleaseCase>& info) {
      std::string n = info.param.what;
      for (char& ch : n)
        if (ch == '-') ch = '_';
      return n;
    });

}  // namespace
}  // namespace ppreid::deid
