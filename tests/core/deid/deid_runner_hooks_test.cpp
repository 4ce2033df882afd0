// The runner hooks for methods that rename identities or skip images (PIS), exercised with a
// test double on a tiny synthetic dataset.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <opencv2/core.hpp>

#include "core/data/synth/generator.h"
#include "core/deid/baselines.h"
#include "core/deid/deid_runner.h"
#include "core/deid/pis/shift_plan.h"
#include "core/util/atomic_file.h"
#include "core/util/error.h"
#include "tests/support/synth.h"
#include "tests/core/deid/deid_run_fixture.h"

namespace ppreid::deid {
namespace {

namespace fs = std::filesystem;

// Renames every identity by a fixed pid map, skips one image and forgets attributes, like PIS.
class RenamingDouble : public Deidentifier {
 public:
  std::map<int, int> new_pid;
  std::string skip;  // path of the image to skip
  std::string fail;  // path of an image whose apply() throws
  std::function<std::string(const data::ImageRecord&)> rename;  // overrides the pid map

  std::string name() const override { return "test-rename"; }
  // Constant, as for a method whose plan is drawn at random inside prepare().
  nlohmann::json parameters() const override { return nlohmann::json::object(); }
  void prepare(const data::Dataset& ds) override { layout_ = ds.layout; }
  cv::Mat apply(const cv::Mat& bgr, const ImageContext& ctx) const override {
    if (ctx.record->path == fail) throw Error("double: cannot de-identify " + fail);
    cv::Mat out;
    cv::bitwise_not(bgr, out);
    return out;
  }
  std::string output_path(const data::ImageRecord& r) const override {
    if (rename) return rename(r);
    return r.pid > 0 ? pis::shifted_path(r.path, layout_, new_pid.at(r.pid)) : r.path;
  }
  bool keeps_identity_attributes() const override { return false; }
  std::optional<std::string> skip_reason(const ImageContext& ctx) const override {
    if (ctx.record->path == skip) return "no usable pose";
    return std::nullopt;
  }

 private:
  data::Layout layout_ = data::Layout::kMarket1501;
};

class DeidRunnerHooksTest : public DeidRunFixture {
 protected:
  void SetUp() override {
    data::synth::SynthOptions o = testing::small_synth(4, 2, 4, 64, 32, 3, /*threads=*/1);
    o.distractors = 1;
    data::synth::generate(o, in());
    ds_ = data::load_dataset(in());
    for (const auto* split : {&ds_.train, &ds_.query, &ds_.gallery})
      for (const auto& r : *split) {
        records_.push_back(r);
        if (r.pid > 0) method_.new_pid[r.pid] = 7000 + r.pid;
      }
    method_.skip = ds_.train[1].path;
  }
  int total() const { return static_cast<int>(records_.size()); }
  void mark_interrupted() {
    fs::remove(out() / "deid.json");
    util::write_file_atomic(
        out() / "deid.partial.json",
        nlohmann::json{{"method", method_.name()}, {"parameters", method_.parameters()}}.dump());
  }

  data::Dataset ds_;
  std::vector<data::ImageRecord> records_;
  RenamingDouble method_;
};

TEST_F(DeidRunnerHooksTest, RenamesSkipsAndRewritesSideFiles) {
  DeidRunOptions o = options();
  o.report = dir_ / "quality.json";
  DeidReport report = deidentify_dataset(method_, o);
  EXPECT_EQ(report.images, total() - 1);

  // The quality report lists the released images by their released names only.
  const std::string listing = util::read_file(dir_ / "quality.json");
  int renamed = 0;
  for (const auto& r : records_) {
    const std::string released = method_.output_path(r);
    const std::string file = fs::path(r.path).filename().string();
    if (r.path == method_.skip) {
      EXPECT_FALSE(fs::exists(out() / released));
      EXPECT_EQ(listing.find(released), std::string::npos);
    } else {
      EXPECT_TRUE(fs::exists(out() / released)) << released;
      EXPECT_NE(listing.find("\"" + released + "\""), std::string::npos) << released;
    }
    if (r.pid > 0) {
      EXPECT_FALSE(fs::exists(out() / r.path)) << "original name released: " << r.path;
      EXPECT_EQ(listing.find(file), std::string::npos) << "original name listed: " << file;
      renamed += r.path == method_.skip ? 0 : 1;
    }
  }

  // keypoints.csv: exactly the released images under their new names, same poses.
  data::KeypointTable kp = data::read_keypoints_csv(out() / "keypoints.csv");
  EXPECT_EQ(static_cast<int>(kp.size()), total() - 1);
  for (const auto& r : records_) {
    if (r.path == method_.skip) continue;
    auto it = kp.find(method_.output_path(r));
    ASSERT_NE(it, kp.end()) << method_.output_path(r);
    const data::Pose& original = *ds_.pose(r);
    for (int j = 0; j < data::kNumJoints; ++j) {
      EXPECT_NEAR(it->second.joints[j].x, original.joints[j].x, 1e-4);
      EXPECT_NEAR(it->second.joints[j].y, original.joints[j].y, 1e-4);
    }
  }
  EXPECT_FALSE(fs::exists(out() / "attributes.csv"));
  EXPECT_TRUE(fs::exists(out() / "municipalities.csv"));

  auto m = nlohmann::json::parse(util::read_file(out() / "deid.json"));
  EXPECT_EQ(m["dropped_side_files"], nlohmann::json({"attributes.csv"}));
  EXPECT_EQ(m["skipped_count"], 1);
  ASSERT_EQ(m["skipped"].size(), 1u);
  // Listed under the name it would have had: the original name would link old and new labels.
  data::ImageRecord skipped = ds_.train[1];
  EXPECT_EQ(m["skipped"][0]["image"], method_.output_path(skipped));
  EXPECT_EQ(m["skipped"][0]["reason"], "no usable pose");
  EXPECT_EQ(m["images"], total() - 1);
  EXPECT_EQ(m["renamed_images"], renamed);
  EXPECT_EQ(m.dump().find(fs::path(skipped.path).filename().string()), std::string::npos);

  // The release is a valid dataset carrying only the new labels.
  data::Dataset released = data::load_dataset(out());
  for (const auto* split : {&released.train, &released.query, &released.gallery})
    for (const auto& r : *split) EXPECT_TRUE(r.pid == 0 || r.pid > 7000) << r.path;
  EXPECT_EQ(released.keypoints.size(), kp.size());
}

TEST_F(DeidRunnerHooksTest, DefaultHooksCopySideFilesUnchanged) {
  Identity method;
  DeidReport report = deidentify_dataset(method, options());
  EXPECT_EQ(report.images, total());
  for (const char* side : {"keypoints.csv", "attributes.csv", "municipalities.csv"})
    EXPECT_EQ(util::read_file(out() / side), util::read_file(in() / side)) << side;
  auto m = nlohmann::json::parse(util::read_file(out() / "deid.json"));
  EXPECT_EQ(m["skipped_count"], 0);
  EXPECT_EQ(m["renamed_images"], 0);
  EXPECT_FALSE(m.contains("dropped_side_files"));
}

TEST_F(DeidRunnerHooksTest, CollidingOrMisplacedOutputPathsAreRefusedBeforeWriting) {
  const std::string a = ds_.train[0].path, a2 = ds_.train[2].path, b = ds_.query[0].path;
  method_.rename = [&](const data::ImageRecord& r) { return r.path == a2 ? a : r.path; };
  try {
    deidentify_dataset(method_, options());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("maps both"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(out_is_empty());

  method_.rename = [&](const data::ImageRecord& r) {
    return r.path == b ? "bounding_box_train/" + fs::path(b).filename().string() : r.path;
  };
  try {
    deidentify_dataset(method_, options());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("split directory 'query'"), std::string::npos) << e.what();
  }
  for (std::string bad :
       {"query/../query/" + fs::path(b).filename().string(),
        "/tmp/" + fs::path(b).filename().string(), std::string("query/x.jpg"), std::string("")}) {
    method_.rename = [&](const data::ImageRecord& r) { return r.path == b ? bad : r.path; };
    EXPECT_THROW(deidentify_dataset(method_, options()), Error) << bad;
  }
  EXPECT_TRUE(out_is_empty());
}

TEST_F(DeidRunnerHooksTest, ResumeChecksRenamedOutputs) {
  deidentify_dataset(method_, options());
  const data::ImageRecord& gone = ds_.query[0];
  const data::ImageRecord& kept = ds_.gallery[0];
  const std::string kept_bytes = util::read_file(out() / method_.output_path(kept));
  fs::remove(out() / method_.output_path(gone));
  mark_interrupted();
  DeidRunOptions o = options();
  o.resume = true;
  DeidReport r = deidentify_dataset(method_, o);
  EXPECT_EQ(r.images, 1);
  EXPECT_EQ(r.resumed, total() - 2);  // the skipped image is neither released nor resumed
  EXPECT_TRUE(fs::exists(out() / method_.output_path(gone)));
  EXPECT_EQ(util::read_file(out() / method_.output_path(kept)), kept_bytes);

  // The same method drawing a new plan (same parameters, other labels) may not finish the run:
  // it would release every person a second time under another label.
  fs::remove(out() / method_.output_path(gone));
  mark_interrupted();
  for (auto& [pid, label] : method_.new_pid) label += 100;
  try {
    deidentify_dataset(method_, o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not among the images this run would write"),
              std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(out() / method_.output_path(gone)));
}

TEST_F(DeidRunnerHooksTest, FailureRemovesRenamedImages) {
  method_.fail = ds_.gallery.back().path;
  try {
    deidentify_dataset(method_, options());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("double: cannot de-identify"), std::string::npos);
  }
  EXPECT_TRUE(out_is_empty());

  // A failing --resume removes what it wrote itself (under the new names) and keeps the rest.
  method_.fail.clear();
  deidentify_dataset(method_, options());
  std::vector<data::ImageRecord> released;
  for (const auto& r : records_)  // renamed images only (distractors keep their names)
    if (r.path != method_.skip && r.pid > 0) released.push_back(r);
  std::sort(released.begin(), released.end(), [&](const auto& x, const auto& y) {
    return method_.output_path(x) < method_.output_path(y);
  });
  const std::string first = method_.output_path(released.front());
  fs::remove(out() / first);
  fs::remove(out() / method_.output_path(released.back()));
  mark_interrupted();
  method_.fail = released.back().path;  // processed last: after `first` was written again
  DeidRunOptions o = options();
  o.resume = true;
  o.threads = 1;
  EXPECT_THROW(deidentify_dataset(method_, o), Error);
  EXPECT_FALSE(fs::exists(out() / first));
  for (size_t i = 1; i + 1 < released.size(); ++i)
    EXPECT_TRUE(fs::exists(out() / method_.output_path(released[i])));
  EXPECT_TRUE(fs::exists(out() / "deid.partial.json"));
}

}  // namespace
}  // namespace ppreid::deid
