// PIS as a de-identification method: a briefly trained model shifts a tiny synthetic dataset
// through the real runner; checks the release, not the image quality (that is the benchmark's).
#include "core/deid/pis/pis_deidentifier.h"

#include <gtest/gtest.h>

#include <set>

#include "core/data/stickman.h"
#include "core/data/synth/generator.h"
#include "core/deid/deid_runner.h"
#include "core/deid/pis/pis_trainer.h"
#include "core/util/error.h"
#include "core/util/image.h"
#include "tests/support/synth.h"
#include "tests/support/temp_dir.h"

namespace ppreid::deid::pis {
namespace {

namespace fs = std::filesystem;

class PisDeidentifierTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    data::synth::SynthOptions o = testing::small_synth(12, 4, 5, 32, 16, 21);
    o.distractors = 3;
    data::synth::generate(o, *dir_ / "data");
    PisConfig c = parse_pis_config(
        "runtime: {threads: 1, seed: 3}\nimage: {height: 32, width: 16}\n"
        "model: {channels: [8, 16, 16], latent_channels: 4}\n"
        "train: {batch_size: 8, stage1_steps: 3, stage2_steps: 2}\n",
        "test.yaml");
    PisTrainRunOptions t;
    t.out = *dir_ / "pis";
    train_pis(c, data::load_dataset(*dir_ / "data"), t);
  }
  static void TearDownTestSuite() { delete dir_; }
  static PisShiftOptions options() {
    PisShiftOptions o;
    o.model = *dir_ / "pis" / "checkpoint";
    o.seed = 9;
    return o;
  }
  static testing::TempDir* dir_;
};
testing::TempDir* PisDeidentifierTest::dir_ = nullptr;

TEST_F(PisDeidentifierTest, ReleaseIsRenamedConsistentlyAndDropsIdentityAttributes) {
  PisDeidentifier pis(options());
  DeidRunOptions run;
  run.in = *dir_ / "data";
  run.out = *dir_ / "released";
  run.threads = 2;
  DeidReport report = deidentify_dataset(pis, run);
  data::Dataset in = data::load_dataset(run.in);
  data::Dataset out = data::load_dataset(run.out);

  std::set<int> original;
  for (const auto* split : {&in.train, &in.query, &in.gallery})
    for (const auto& r : *split) original.insert(r.pid);
  // Same original identity -> same new identity in every split; new labels are all fresh.
  std::map<int, int> new_of_old;
  std::set<int> released_pids;
  for (const auto* split : {&in.train, &in.query, &in.gallery})
    for (const auto& r : *split) {
      const IdentityShift& s = pis.plan().for_image(r);
      auto [it, added] = new_of_old.emplace(r.pid, s.new_pid);
      EXPECT_EQ(it->second, s.new_pid) << r.path;
      if (r.pid > 0) EXPECT_EQ(original.count(s.new_pid), 0u) << s.new_pid;
      if (!pis.skip_reason({&r, in.pose(r), 0}))
        EXPECT_TRUE(fs::exists(run.out / pis.output_path(r))) << pis.output_path(r);
    }
  for (const auto* split : {&out.train, &out.query, &out.gallery})
    for (const auto& r : *split)
      if (r.pid > 0) EXPECT_EQ(original.count(r.pid), 0u) << r.path;
  EXPECT_EQ(out.num_train_ids, in.num_train_ids);
  EXPECT_FALSE(fs::exists(run.out / "attributes.csv"));
  EXPECT_EQ(report.manifest["method"], "pis");
  EXPECT_EQ(report.manifest["parameters"]["lambdas"], nlohmann::json({0.5, 0.5}));
  // The manifest never holds the mapping.
  EXPECT_EQ(report.manifest.dump().find("\"partners\":[{"), std::string::npos);
}

TEST_F(PisDeidentifierTest, BatchEqualsOneAtATimeAndMixingChangesTheImage) {
  PisDeidentifier pis(options());
  data::Dataset ds = data::load_dataset(*dir_ / "data");
  pis.prepare(ds);
  std::vector<cv::Mat> images;
  std::vector<ImageContext> contexts;
  for (const auto& r : ds.train) {
    if (!ds.pose(r) || !data::usable_for_pose_conditioning(*ds.pose(r))) continue;
    images.push_back(util::decode_image(ds.absolute(r)));
    contexts.push_back({&r, ds.pose(r), contexts.size()});
    if (images.size() == 3) break;
  }
  ASSERT_EQ(images.size(), 3u);
  auto batch = pis.apply_batch(images, contexts);
  for (size_t i = 0; i < images.size(); ++i) {
    cv::Mat one = pis.apply(images[i], contexts[i]);
    ASSERT_EQ(one.size(), images[i].size());
    EXPECT_LE(cv::norm(one, batch[i], cv::NORM_INF), 1.0) << i;
  }
  // Against lambda = 1 (no partner) the shift must differ: the partner is really mixed in.
  PisShiftOptions solo = options();
  solo.lambda = 0.75;
  solo.max_weight = 0.75;
  PisDeidentifier pis75(solo);
  pis75.prepare(ds);
  EXPECT_GT(cv::norm(pis75.apply(images[0], contexts[0]), batch[0], cv::NORM_L1), 0.0);
}

TEST_F(PisDeidentifierTest, SeededSamplingIsReproducibleAndDiffersFromTheMean) {
  data::Dataset ds = data::load_dataset(*dir_ / "data");
  PisShiftOptions o = options();
  o.sample = true;
  PisDeidentifier a(o), b(o), mean(options());
  a.prepare(ds), b.prepare(ds), mean.prepare(ds);
  const auto& r = ds.train.front();
  cv::Mat img = util::decode_image(ds.absolute(r));
  ImageContext ctx{&r, ds.pose(r), 4};
  if (a.skip_reason(ctx)) GTEST_SKIP() << "first image has no usable pose";
  EXPECT_EQ(cv::norm(a.apply(img, ctx), b.apply(img, ctx), cv::NORM_INF), 0.0);
  EXPECT_GT(cv::norm(a.apply(img, ctx), mean.apply(img, ctx), cv::NORM_L1), 0.0);
}

TEST_F(PisDeidentifierTest, InvalidWeightsAndMissingPosesAreRefused) {
  PisShiftOptions o = options();
  o.lambda = 0.7;  // above d = 0.5
  EXPECT_THROW(PisDeidentifier{o}, UsageError);
  o = options();
  o.model = *dir_ / "nowhere";
  EXPECT_THROW(PisDeidentifier{o}, Error);
  PisDeidentifier pis(options());
  data::Pose no_hips;
  no_hips[data::Joint::kRShoulder] = {0.4f, 0.2f};
  EXPECT_TRUE(pis.skip_reason({nullptr, &no_hips, 0}).has_value());
  EXPECT_TRUE(pis.skip_reason({nullptr, nullptr, 0}).has_value());
}

}  // namespace
}  // namespace ppreid::deid::pis
