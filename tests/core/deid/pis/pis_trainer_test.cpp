// PIS training end to end on a tiny synthetic dataset: learning, checkpoints, grids, resume.
#include "core/deid/pis/pis_trainer.h"

#include <gtest/gtest.h>

#include <torch/torch.h>

#include <fstream>

#include "core/data/synth/generator.h"
#include "core/deid/pis/pis_checkpoint.h"
#include "core/util/atomic_file.h"
#include "core/util/error.h"
#include "tests/support/synth.h"
#include "tests/support/temp_dir.h"

namespace ppreid::deid::pis {
namespace {

namespace fs = std::filesystem;

class PisTrainerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    data::synth::generate(testing::small_synth(12, 4, 6, 32, 16, 11), *dir_ / "data");
    dataset_ = new data::Dataset(data::load_dataset(*dir_ / "data"));
  }
  static void TearDownTestSuite() {
    delete dataset_;
    delete dir_;
  }
  static PisConfig config(int stage1, int stage2) {
    PisConfig c = parse_pis_config(
        "runtime: {threads: 1, seed: 3}\n"
        "image: {height: 32, width: 16}\n"
        "model: {channels: [8, 16, 16], latent_channels: 4}\n"
        "train: {batch_size: 8, lr: 2.0e-3, stage1_steps: " + std::to_string(stage1) +
            ", stage2_steps: " + std::to_string(stage2) +
            ", checkpoint_every: 4, grid_every: 5, log_every: 2, kl_weight: 1.0e-3}\n",
        "test.yaml");
    return c;
  }
  static std::vector<nlohmann::json> metrics(const fs::path& run) {
    std::vector<nlohmann::json> lines;
    std::ifstream in(run / "metrics.jsonl");
    for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
    return lines;
  }
  // The logged losses without the timing field, which no two runs share.
  static std::vector<nlohmann::json> losses(const fs::path& run) {
    std::vector<nlohmann::json> lines = metrics(run);
    for (auto& line : lines) line.erase("steps_per_second");
    return lines;
  }
  // The Adam state a checkpoint continues from, by parameter name.
  static torch::OrderedDict<std::string, torch::Tensor> adam_state(PisModel& m, const fs::path& run) {
    torch::optim::Adam adam(m.net->parameters(), torch::optim::AdamOptions(1.0));
    torch::serialize::InputArchive archive, optimizer;
    archive.load_from((pis_checkpoint_dir(run / "checkpoint") / "training.pt").string());
    archive.read("optimizer", optimizer);
    adam.load(optimizer);
    torch::OrderedDict<std::string, torch::Tensor> out;
    for (const auto& p : m.net->named_parameters()) {
      auto it = adam.state().find(c10::guts::to_string(p.value().unsafeGetTensorImpl()));
      if (it == adam.state().end()) continue;  // a parameter no loss has reached yet
      const auto& s = static_cast<const torch::optim::AdamParamState&>(*it->second);
      out.insert(p.key() + ".step", torch::tensor(s.step()));
      out.insert(p.key() + ".exp_avg", s.exp_avg());
      out.insert(p.key() + ".exp_avg_sq", s.exp_avg_sq());
    }
    return out;
  }
  static void expect_equal_tensors(const torch::OrderedDict<std::string, torch::Tensor>& a,
                                   const torch::OrderedDict<std::string, torch::Tensor>& b,
                                   const std::string& what) {
    ASSERT_EQ(a.keys(), b.keys()) << what;
    for (const auto& item : a) {
      const torch::Tensor& other = b[item.key()];
      EXPECT_TRUE(item.value().dtype() == other.dtype() && torch::equal(item.value(), other))
          << what << " " << item.key() << " differs, by up to "
          << (item.value().to(torch::kDouble) - other.to(torch::kDouble)).abs().max().item<double>();
    }
  }
  static testing::TempDir* dir_;
  static data::Dataset* dataset_;
};
testing::TempDir* PisTrainerTest::dir_ = nullptr;
data::Dataset* PisTrainerTest::dataset_ = nullptr;

TEST_F(PisTrainerTest, TrainsBothStagesAndWritesCheckpointGridsAndMetrics) {
  PisTrainRunOptions o;
  o.out = *dir_ / "run";
  PisTrainSummary s = train_pis(config(24, 6), *dataset_, o);
  EXPECT_TRUE(s.finished);
  EXPECT_EQ(s.last_step, 30);
  auto lines = metrics(o.out);
  ASSERT_EQ(lines.size(), 16u);  // 15 loss windows + the stage-1 evaluation after step 24
  ASSERT_TRUE(lines[12].contains("stage1_eval"));
  lines.erase(lines.begin() + 12);
  // Learning: the reconstruction term falls over stage 1.
  EXPECT_LT(lines[11]["rec"].get<double>(), 0.8 * lines[0]["rec"].get<double>());
  // Stage 2 adds the cycle and similarity-preservation terms.
  EXPECT_EQ(lines[0]["stage"], 1);
  EXPECT_EQ(lines[0]["app"].get<double>(), 0.0);
  EXPECT_EQ(lines.back()["stage"], 2);
  EXPECT_GT(lines.back()["app"].get<double>(), 0.0);
  EXPECT_GT(lines.back()["cycle"].get<double>(), 0.0);
  EXPECT_TRUE(fs::exists(o.out / "grids" / "step_0000005.png"));
  EXPECT_TRUE(fs::exists(o.out / "grids" / "step_0000030.png"));
  PisModel m = load_pis_model(o.out / "checkpoint");
  EXPECT_EQ(m.info.step, 30);
  EXPECT_EQ(m.info.num_ids, dataset_->num_train_ids);
  EXPECT_TRUE(m.info.metrics.contains("stage1"));
  const double ssim = m.info.metrics["reconstruction_ssim"].get<double>();
  EXPECT_GT(ssim, 0.0);
  EXPECT_LE(ssim, 1.0);
  EXPECT_TRUE(fs::exists(o.out / "summary.json"));
  // A second run into the same directory is refused unless it resumes.
  EXPECT_THROW(train_pis(config(24, 6), *dataset_, o), Error);
}

TEST_F(PisTrainerTest, ResumedRunEqualsAnUninterruptedOne) {
  PisTrainRunOptions whole;
  whole.out = *dir_ / "whole";
  train_pis(config(6, 4), *dataset_, whole);

  PisTrainRunOptions split;
  split.out = *dir_ / "split";
  split.max_steps = 7;  // stops inside stage 2, between checkpoints
  PisTrainSummary first = train_pis(config(6, 4), *dataset_, split);
  EXPECT_FALSE(first.finished);
  EXPECT_EQ(read_pis_info(split.out / "checkpoint").step, 7);
  split.max_steps = 0;
  split.resume = true;
  PisTrainSummary second = train_pis(config(6, 4), *dataset_, split);
  EXPECT_TRUE(second.finished);
  EXPECT_EQ(second.steps_run, 3);

  // Bit for bit, as the README claims: every parameter, buffer (none today) and Adam moment, and
  // every logged loss, not merely close.
  PisModel a = load_pis_model(whole.out / "checkpoint"), b = load_pis_model(split.out / "checkpoint");
  const auto adam_whole = adam_state(a, whole.out), adam_split = adam_state(b, split.out);
  ASSERT_FALSE(adam_whole.is_empty());
  expect_equal_tensors(a.net->named_parameters(), b.net->named_parameters(), "parameter");
  expect_equal_tensors(a.net->named_buffers(), b.net->named_buffers(), "buffer");
  expect_equal_tensors(adam_whole, adam_split, "Adam state");
  EXPECT_EQ(losses(whole.out), losses(split.out));
}

TEST_F(PisTrainerTest, ResumeRefusesADifferentNetwork) {
  PisTrainRunOptions o;
  o.out = *dir_ / "short";
  train_pis(config(2, 0), *dataset_, o);
  PisConfig other = config(2, 0);
  other.network.latent_channels = 6;
  o.resume = true;
  EXPECT_THROW(train_pis(other, *dataset_, o), Error);
  PisTrainRunOptions nothing;
  nothing.out = *dir_ / "nothing";
  nothing.resume = true;
  EXPECT_THROW(train_pis(config(2, 0), *dataset_, nothing), Error);
}

}  // namespace
}  // namespace ppreid::deid::pis
