#include "core/reid/train_config.h"

#include <gtest/gtest.h>

#include "core/util/error.h"

namespace ppreid::reid {
namespace {

TEST(TrainConfig, ShippedConfigsLoad) {
  for (const char* name : {"tiny", "small", "paper"}) {
    TrainConfig c =
        load_train_config(std::string(PPREID_SOURCE_DIR) + "/configs/train/" + name + ".yaml");
    EXPECT_EQ(c.profile.name, std::string("train-") + name);
    EXPECT_GE(c.profile.loader.k, 2);
  }
  TrainConfig paper = load_train_config(std::string(PPREID_SOURCE_DIR) + "/configs/train/paper.yaml");
  EXPECT_EQ(paper.backbone.arch, "resnet50");
  EXPECT_DOUBLE_EQ(paper.optimizer.lr, 3.5e-4);
  EXPECT_EQ(paper.schedule.milestones, (std::vector<int>{40, 70}));
}

// BoT's WarmupMultiStepLR with lr 3.5e-4, 10 warm-up epochs from 0.01x, x0.1 at 40 and 70.
TEST(TrainConfig, WarmupMultiStepSchedule) {
  ScheduleOptions s;
  const double lr = 3.5e-4;
  EXPECT_DOUBLE_EQ(s.lr_at(lr, 0), lr * 0.01);
  EXPECT_DOUBLE_EQ(s.lr_at(lr, 5), lr * (0.01 * 0.5 + 0.5));
  EXPECT_DOUBLE_EQ(s.lr_at(lr, 10), lr);
  EXPECT_DOUBLE_EQ(s.lr_at(lr, 39), lr);
  EXPECT_NEAR(s.lr_at(lr, 40), lr * 0.1, 1e-18);
  EXPECT_NEAR(s.lr_at(lr, 69), lr * 0.1, 1e-18);
  EXPECT_NEAR(s.lr_at(lr, 70), lr * 0.01, 1e-18);
  EXPECT_NEAR(s.lr_at(lr, 119), lr * 0.01, 1e-18);
}

TEST(TrainConfig, LossWeightZeroSwitchesItOff) {
  TrainConfig c = parse_train_config("loss:\n  center_weight: 0\n  centroid_weight: 0.5\n", "t.yaml");
  EXPECT_FALSE(c.loss.weights.use_center);
  EXPECT_TRUE(c.loss.weights.use_centroid);
  EXPECT_DOUBLE_EQ(c.loss.weights.centroid, 0.5);
}

TEST(TrainConfig, CentroidProtocolDefaultsToTheReference) {
  EXPECT_EQ(parse_train_config("eval:\n  every: 0\n", "t.yaml").eval.centroid_protocol,
            CentroidProtocol::kReference);
  EXPECT_EQ(parse_train_config("eval:\n  centroid_protocol: strict\n", "t.yaml")
                .eval.centroid_protocol,
            CentroidProtocol::kStrict);
  EXPECT_EQ(parse_train_config("eval:\n  centroid_protocol: all-cameras\n", "t.yaml")
                .eval.centroid_protocol,
            CentroidProtocol::kAllCameras);
}

struct BadTrainConfig {
  std::string yaml;
  std::string expected;
};

class TrainConfigErrorTest : public ::testing::TestWithParam<BadTrainConfig> {};

TEST_P(TrainConfigErrorTest, NamesFileLineAndKey) {
  try {
    parse_train_config(GetParam().yaml, "configs/train/bad.yaml");
    FAIL() << GetParam().yaml;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(GetParam().expected), std::string::npos) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, TrainConfigErrorTest,
    ::testing::Values(
        BadTrainConfig{"model:\n  arch: vgg16\n",
                       "bad.yaml:2: key 'model.arch': 'vgg16' is not one of"},
        BadTrainConfig{"model:\n  archh: resnet18\n", "bad.yaml:2: unknown key 'model.archh'"},
        BadTrainConfig{"loss:\n  id_weight: 0\n  triplet_weight: 0\n  center_weight: 0\n"
                       "  centroid_weight: 0\n",
                       "every loss is switched off"},
        BadTrainConfig{"loss:\n  margin: -1\n", "key 'loss.margin': value -1 is out of range"},
        BadTrainConfig{"schedule:\n  milestones: [70, 40]\n",
                       "bad.yaml:2: key 'schedule.milestones': must be increasing"},
        BadTrainConfig{"schedule:\n  epochs: 0\n", "key 'schedule.epochs'"},
        BadTrainConfig{"loader:\n  k: 1\n", "key 'loader.k': triplet and centroid losses need k >= 2"},
        BadTrainConfig{"eval:\n  metric: manhattan\n", "key 'eval.metric'"},
        BadTrainConfig{"eval:\n  centroid_protocol: paper\n",
                       "bad.yaml:2: key 'eval.centroid_protocol': 'paper' is not one of: "
                       "reference, strict, all-cameras"},
        BadTrainConfig{"optimizer:\n  lr: fast\n", "key 'optimizer.lr': expected a number"}));

}  // namespace
}  // namespace ppreid::reid
