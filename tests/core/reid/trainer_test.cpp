// End-to-end training on the synthetic dataset with the tiny profile.
#include "core/reid/trainer.h"

#include <gtest/gtest.h>

#include "core/data/synth/generator.h"
#include "core/reid/checkpoint.h"
#include "core/reid/features.h"
#include "core/util/atomic_file.h"
#include "core/util/error.h"
#include "tests/support/synth.h"
#include "tests/support/temp_dir.h"

namespace ppreid::reid {
namespace {

namespace fs = std::filesystem;

// One synthetic dataset shared by the tests of this file (generating it takes ~0.1 s, but the
// trained run is what we want to reuse).
class TrainerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    data::synth::generate(testing::small_synth(40, 4, 8, 64, 32, 5), *dir_ / "data");
    dataset_ = new data::Dataset(data::load_dataset(*dir_ / "data"));
  }
  static void TearDownTestSuite() {
    delete dataset_;
    delete dir_;
  }
  static TrainConfig tiny() {
    return load_train_config(std::string(PPREID_SOURCE_DIR) + "/configs/train/tiny.yaml");
  }
  static testing::TempDir* dir_;
  static data::Dataset* dataset_;
};
testing::TempDir* TrainerTest::dir_ = nullptr;
data::Dataset* TrainerTest::dataset_ = nullptr;

TEST_F(TrainerTest, TinyTrainingBeatsUntrainedModelByWideMargin) {
  TrainConfig config = tiny();
  torch::manual_seed(config.profile.runtime.seed);
  ReidModel untrained(ModelOptions{config.backbone, dataset_->num_train_ids, true});
  double untrained_map =
      evaluate_model(untrained, *dataset_, config.profile.transform, "euclidean", false)["instance"]["mAP"];

  TrainOptions options;
  options.out = *dir_ / "run";
  TrainSummary s = train_model(config, *dataset_, options);
  double trained_map = s.metrics["instance"]["mAP"];
  double centroid_map = s.metrics["centroid"]["mAP"];
  EXPECT_EQ(s.epochs_run, config.schedule.epochs);
  EXPECT_GT(trained_map, untrained_map + 0.2)
      << "untrained " << untrained_map << ", trained " << trained_map;
  EXPECT_GT(centroid_map, untrained_map + 0.2);
  EXPECT_TRUE(fs::exists(options.out / "checkpoint" / "training.pt"));
  EXPECT_TRUE(fs::exists(options.out / "summary.json"));
  std::string lines = util::read_file(options.out / "metrics.jsonl");
  EXPECT_EQ(std::count(lines.begin(), lines.end(), '\n'), config.schedule.epochs);

  // The checkpoint reloads into a model that gives the same numbers.
  CheckpointInfo info;
  ReidModel reloaded = load_checkpoint_model(options.out / "checkpoint", &info);
  EXPECT_EQ(info.epoch, config.schedule.epochs - 1);
  double reloaded_map =
      evaluate_model(reloaded, *dataset_, config.profile.transform, "euclidean", false)["instance"]["mAP"];
  EXPECT_NEAR(reloaded_map, trained_map, 1e-6);
}

TEST_F(TrainerTest, ResumeContinuesFromTheCheckpoint) {
  TrainConfig config = tiny();
  config.schedule.epochs = 2;
  TrainOptions options;
  options.out = *dir_ / "resume";
  options.evaluate = false;
  train_model(config, *dataset_, options);
  EXPECT_EQ(read_checkpoint_info(options.out / "checkpoint").epoch, 1);
  config.schedule.epochs = 3;
  options.resume = true;
  TrainSummary s = train_model(config, *dataset_, options);
  EXPECT_EQ(s.epochs_run, 1);
  EXPECT_EQ(s.last_epoch, 2);
  // Resuming with another architecture is refused.
  config.backbone.arch = "resnet_small";
  EXPECT_THROW(train_model(config, *dataset_, options), Error);
}

TEST_F(TrainerTest, RefusesTooFewIdentitiesForP) {
  TrainConfig config = tiny();
  config.profile.loader.p = dataset_->num_train_ids + 1;
  TrainOptions options;
  options.out = *dir_ / "too-few";
  try {
    train_model(config, *dataset_, options);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("lower loader.p"), std::string::npos) << e.what();
  }
}

TEST_F(TrainerTest, CheckpointPartsAreSeparable) {
  TrainConfig config = tiny();
  ReidModel a(ModelOptions{config.backbone, 20, true});
  ReidModel b(ModelOptions{config.backbone, 20, true});
  save_shared(a, *dir_ / "shared.pt");
  save_head(a, *dir_ / "head.pt");
  load_shared(b, *dir_ / "shared.pt");
  auto sa = a->shared_state(), sb = b->shared_state();
  for (size_t i = 0; i < sa.size(); ++i) EXPECT_TRUE(torch::equal(sa[i].second, sb[i].second));
  // Heads differ until loaded; a head for another number of identities is refused.
  EXPECT_FALSE(torch::equal(a->head_state()[0].second, b->head_state()[0].second));
  load_head(b, *dir_ / "head.pt");
  EXPECT_TRUE(torch::equal(a->head_state()[0].second, b->head_state()[0].second));
  ReidModel c(ModelOptions{config.backbone, 7, true});
  EXPECT_THROW(load_head(c, *dir_ / "head.pt"), Error);
  // A checkpoint without its head is reported as such.
  CheckpointInfo info;
  info.backbone = config.backbone;
  info.num_classes = 20;
  save_checkpoint(*dir_ / "ckpt", a, info);
  fs::remove(*dir_ / "ckpt" / "head.pt");
  try {
    load_checkpoint_model(*dir_ / "ckpt");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing head.pt"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ppreid::reid
