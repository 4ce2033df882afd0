// `ppreid train --world-size 2` as two real processes over Gloo on loopback, checked against one
// process training on the same global batches.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/data/loader.h"
#include "core/data/synth/generator.h"
#include "core/reid/checkpoint.h"
#include "core/reid/features.h"
#include "core/reid/losses.h"
#include "core/reid/model.h"
#include "core/reid/train_config.h"
#include "core/reid/train_step.h"
#include "core/util/atomic_file.h"
#include "core/tensor/torch_threads.h"
#include "tests/support/ranks.h"
#include "tests/support/spawn.h"
#include "tests/support/synth.h"
#include "tests/support/temp_dir.h"

namespace ppreid::reid {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr int kWorld = 2;
constexpr int kP = 2;  // identities per rank and step; the global batch has kWorld * kP
constexpr int kK = 4;

std::string config_yaml(int epochs, const std::string& batch_norm, double timeout_seconds) {
  return "runtime: {threads: 1, seed: 3}\n"
         "image: {height: 64, width: 32}\n"
         "transform: {flip_prob: 0.5, pad: 4, erasing_prob: 0.5}\n"
         "loader: {p: " + std::to_string(kP) + ", k: " + std::to_string(kK) +
         ", workers: 1, prefetch_batches: 2}\n"
         "model: {arch: resnet_tiny, last_stride_one: true}\n"
         "loss: {id_weight: 1.0, triplet_weight: 1.0, center_weight: 0.0005, "
         "centroid_weight: 1.0, label_smoothing: 0.1, margin: 0.3}\n"
         "optimizer: {lr: 3.5e-3, weight_decay: 5.0e-4, center_lr: 0.5}\n"
         "schedule: {epochs: " + std::to_string(epochs) +
         ", warmup_epochs: 0, milestones: []}\n"
         "eval: {metric: euclidean, centroids: true, every: 0, batch_size: 16}\n"
         "distributed: {batch_norm: " + batch_norm +
         ", bucket_mb: 0.05, overlap: true, timeout_seconds: " +
         std::to_string(timeout_seconds) + "}\n";
}

class DataParallelTrainTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    data::synth::generate(testing::small_synth(24, 2, 8, 64, 32, 9, 1), *dir_ / "data");
    dataset_ = new data::Dataset(data::load_dataset(*dir_ / "data"));
  }
  static void TearDownTestSuite() {
    delete dataset_;
    delete dir_;
  }

  fs::path write_config(const std::string& name, const std::string& yaml) {
    const fs::path file = *dir_ / (name + ".yaml");
    util::write_file_atomic(file, yaml);
    return file;
  }

  // One `ppreid train` process per rank; rank r logs to OUT.rank-r.log. Rank 0 gets the launch
  // as flags, the others as a torchrun-style environment, so both paths are exercised.
  std::vector<pid_t> launch(const fs::path& config, const fs::path& out, int port,
                            bool resume = false) {
    std::vector<pid_t> pids;
    for (int r = 0; r < kWorld; ++r) {
      std::vector<std::string> args = {
          "train", "--config", config.string(), "--data", (*dir_ / "data").string(),
          "--out", r == 0 ? out.string() : (out.string() + ".rank" + std::to_string(r)),
          "--backend", "gloo"};
      std::vector<std::string> env;
      if (r == 0) {
        args.insert(args.end(), {"--world-size", std::to_string(kWorld), "--rank", "0",
                                 "--rendezvous", "127.0.0.1:" + std::to_string(port)});
      } else {
        env = {"WORLD_SIZE=" + std::to_string(kWorld), "RANK=" + std::to_string(r),
               "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + std::to_string(port)};
      }
      if (resume) args.push_back("--resume");
      pids.push_back(testing::spawn_ppreid(args, log_of(out, r), env));
    }
    return pids;
  }
  static fs::path log_of(const fs::path& out, int rank) {
    return out.string() + ".rank-" + std::to_string(rank) + ".log";
  }
  static std::string logs(const fs::path& out) {
    std::string all;
    for (int r = 0; r < kWorld; ++r)
      if (fs::exists(log_of(out, r)))
        all += "--- rank " + std::to_string(r) + "\n" + util::read_file(log_of(out, r));
    return all;
  }
  // Waits (up to 2 minutes) until rank 0 has finished an epoch and written its checkpoint.
  static bool first_epoch_written(const fs::path& out) {
    const auto until = std::chrono::steady_clock::now() + 120s;
    while (!fs::exists(out / "metrics.jsonl") && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(50ms);
    return fs::exists(out / "metrics.jsonl");
  }
  // Waits for every rank; true when all exited with 0.
  static bool all_succeed(const std::vector<pid_t>& pids, const fs::path& out) {
    bool ok = true;
    for (pid_t pid : pids) {
      auto code = testing::wait_exit(pid, 240s);
      if (!code) testing::kill_and_reap(pid);
      ok = ok && code == 0;
    }
    EXPECT_TRUE(ok) << logs(out);
    return ok;
  }

  // One process, the same global batches (P' = W x P), the loss of each rank's sub-batch averaged
  // over the sub-batches: what data-parallel training must reproduce. With `sync_bn` the forward
  // pass runs over the whole global batch (BatchNorm statistics of all of it).
  static ReidModel reference_training(const TrainConfig& config, bool sync_bn) {
    tensor::configure_torch_threads(1);
    torch::manual_seed(config.profile.runtime.seed);
    ReidModel model(ModelOptions{config.backbone, dataset_->num_train_ids, true});
    CenterLoss center(dataset_->num_train_ids, model->feature_dim());
    torch::optim::Adam optimizer(trainable_parameters(model),
                                 torch::optim::AdamOptions(config.schedule.lr_at(config.optimizer.lr, 0))
                                     .weight_decay(config.optimizer.weight_decay));
    torch::optim::SGD center_optimizer(center->parameters(),
                                       torch::optim::SGDOptions(config.optimizer.center_lr));
    data::LoaderOptions global = config.profile.loader;
    global.p = kWorld * kP;
    data::TrainLoader loader(*dataset_, config.profile.transform, global);
    const LossWeights& w = config.loss.weights;
    model->train();
    for (int epoch = 0; epoch < config.schedule.epochs; ++epoch) {
      loader.start_epoch(epoch);
      while (auto batch = loader.next()) {
        const std::int64_t share = batch->size() / kWorld;
        torch::Tensor objective = torch::zeros({});
        ReidOutput whole;
        if (sync_bn) whole = model->forward(batch->images);
        for (int r = 0; r < kWorld; ++r) {
          ReidOutput out;
          if (sync_bn) {
            out = {whole.global_feat.narrow(0, r * share, share),
                   whole.bn_feat.narrow(0, r * share, share),
                   whole.logits.narrow(0, r * share, share)};
          } else {
            out = model->forward(batch->images.narrow(0, r * share, share));
          }
          LossParts parts = combined_loss(out, batch->labels.narrow(0, r * share, share), w,
                                          &center, config.loss.label_smoothing, config.loss.margin);
          objective = objective + parts.total;
        }
        objective = objective / kWorld;
        optimizer.zero_grad();
        center_optimizer.zero_grad();
        objective.backward();
        optimizer.step();
        for (auto& p : center->parameters()) p.mutable_grad().mul_(1.0 / w.center);
        center_optimizer.step();
      }
    }
    return model;
  }

  static double max_difference(const NamedTensors& a, const NamedTensors& b) {
    EXPECT_EQ(a.size(), b.size());
    double worst = 0;
    for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
      EXPECT_EQ(a[i].first, b[i].first);
      worst = std::max(worst, (a[i].second.to(torch::kFloat64) - b[i].second.to(torch::kFloat64))
                                  .abs()
                                  .max()
                                  .item<double>());
    }
    return worst;
  }

  static testing::TempDir* dir_;
  static data::Dataset* dataset_;
};
testing::TempDir* DataParallelTrainTest::dir_ = nullptr;
data::Dataset* DataParallelTrainTest::dataset_ = nullptr;

// Parameters only: with local BatchNorm the ranks' running statistics are averaged, which no
// sequential single process reproduces (it updates them once per sub-batch).
NamedTensors parameters_of(const ReidModel& model) {
  NamedTensors out;
  for (auto& p : model->named_parameters()) out.emplace_back(p.key(), p.value().detach());
  return out;
}
NamedTensors buffers_of(const ReidModel& model) {
  NamedTensors out;
  for (auto& b : model->named_buffers()) out.emplace_back(b.key(), b.value().detach());
  return out;
}

TEST_F(DataParallelTrainTest, TwoRanksEqualOneProcessOnTheSameGlobalBatchesAndEvaluateExactly) {
  const fs::path config_file = write_config("local", config_yaml(2, "local", 60));
  const TrainConfig config = load_train_config(config_file);
  const fs::path out = *dir_ / "run-local";
  ASSERT_TRUE(all_succeed(launch(config_file, out, testing::free_tcp_port()), out));

  CheckpointInfo info;
  ReidModel trained = load_checkpoint_model(out / "checkpoint", &info);
  EXPECT_EQ(info.epoch, 1);
  ReidModel reference = reference_training(config, /*sync_bn=*/false);
  // Measured: 0 (bit-identical) after 2 epochs of 6 steps; the issue asks for 1e-5.
  EXPECT_LT(max_difference(parameters_of(trained), parameters_of(reference)), 1e-5);
  // ...and training moved them far more than that.
  torch::manual_seed(config.profile.runtime.seed);
  ReidModel initial(ModelOptions{config.backbone, dataset_->num_train_ids, true});
  EXPECT_GT(max_difference(parameters_of(trained), parameters_of(initial)), 1e-3);

  // The metrics the two ranks computed from gathered features are exactly those of one process
  // evaluating the checkpoint.
  const auto summary = nlohmann::json::parse(util::read_file(out / "summary.json"));
  EXPECT_EQ(summary["world_size"], kWorld);
  data::EvalLoaderOptions eval_options;
  eval_options.batch_size = config.eval.batch_size;
  const nlohmann::json single = evaluate_model(trained, *dataset_, test_transform(info),
                                               config.eval.metric, true, eval_options);
  EXPECT_EQ(summary["metrics"].dump(), single.dump());
  EXPECT_FALSE(fs::exists(out.string() + ".rank1"));  // only rank 0 writes a run directory
}

TEST_F(DataParallelTrainTest, SyncBatchNormEqualsOneProcessWithBatchNormOverTheGlobalBatch) {
  const fs::path config_file = write_config("sync", config_yaml(1, "sync", 60));
  const TrainConfig config = load_train_config(config_file);
  const fs::path out = *dir_ / "run-sync";
  ASSERT_TRUE(all_succeed(launch(config_file, out, testing::free_tcp_port()), out));
  ReidModel trained = load_checkpoint_model(out / "checkpoint");
  ReidModel reference = reference_training(config, /*sync_bn=*/true);
  const double to_global = max_difference(parameters_of(trained), parameters_of(reference));
  const double to_local =
      max_difference(parameters_of(trained), parameters_of(reference_training(config, false)));
  // Measured: 4.4e-5 from the global-batch reference, 3.4e-2 from local BatchNorm. Not 1e-5 like
  // local BatchNorm (which is bit-identical): torch's BatchNorm computes the statistics by
  // Welford's method, SyncBN by sums over the ranks, and Adam turns the float-rounding
  // differences of near-zero gradients into steps of up to the learning rate.
  EXPECT_LT(to_global, 1e-4);
  EXPECT_GT(to_local, 100 * to_global);
  EXPECT_LT(max_difference(buffers_of(trained), buffers_of(reference)), 1e-4);
}

TEST_F(DataParallelTrainTest, AKilledRankMakesTheOtherFailWithinTheTimeoutAndARestartResumes) {
  const double timeout = 6;
  const fs::path config_file = write_config("long", config_yaml(200, "local", timeout));
  const fs::path out = *dir_ / "run-killed";
  std::vector<pid_t> pids = launch(config_file, out, testing::free_tcp_port());
  // Wait for the first checkpoint, then kill rank 1 as a crash would.
  ASSERT_TRUE(first_epoch_written(out)) << logs(out);
  ::kill(pids[1], SIGKILL);
  const auto killed = std::chrono::steady_clock::now();
  auto code = testing::wait_exit(pids[0], std::chrono::milliseconds(static_cast<int>(timeout * 1000)) + 15s);
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  testing::wait_exit(pids[1], 5s);
  if (!code) testing::kill_and_reap(pids[0]);
  ASSERT_TRUE(code.has_value()) << "rank 0 did not exit after its peer died\n" << logs(out);
  EXPECT_EQ(*code, 1) << logs(out);
  EXPECT_LT(waited, timeout + 10);
  const std::string log0 = util::read_file(log_of(out, 0));
  EXPECT_THAT(log0, HasSubstr("failed on rank 0 of 2"));
  EXPECT_THAT(log0, HasSubstr("--resume"));

  // Restart both from rank 0's last checkpoint, now for one epoch more than it holds.
  const int done = read_checkpoint_info(out / "checkpoint").epoch + 1;
  const fs::path resume_config = write_config("resume", config_yaml(done + 1, "local", 60));
  ASSERT_TRUE(all_succeed(launch(resume_config, out, testing::free_tcp_port(), true), out));
  EXPECT_EQ(read_checkpoint_info(out / "checkpoint").epoch, done);
  EXPECT_THAT(util::read_file(log_of(out, 0)), HasSubstr("resuming after epoch " + std::to_string(done)));
  const std::string lines = util::read_file(out / "metrics.jsonl");
  EXPECT_EQ(std::count(lines.begin(), lines.end(), '\n'), done + 1);
}

TEST_F(DataParallelTrainTest, AStuckRankMakesTheOtherFailOnceTheTimeoutHasPassed) {
  // SIGSTOP keeps the peer's sockets open: only the collective timeout can end the wait.
  const double timeout = 3;
  const fs::path config_file = write_config("stuck", config_yaml(200, "local", timeout));
  const fs::path out = *dir_ / "run-stuck";
  std::vector<pid_t> pids = launch(config_file, out, testing::free_tcp_port());
  ASSERT_TRUE(first_epoch_written(out)) << logs(out);
  ::kill(pids[1], SIGSTOP);
  const auto stopped = std::chrono::steady_clock::now();
  auto code = testing::wait_exit(pids[0], 30s);
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - stopped).count();
  testing::kill_and_reap(pids[1]);
  if (!code) testing::kill_and_reap(pids[0]);
  ASSERT_TRUE(code.has_value()) << "rank 0 still waits for its stuck peer\n" << logs(out);
  EXPECT_EQ(*code, 1) << logs(out);
  EXPECT_GE(waited, timeout - 1);  // it did wait for the timeout (the peer was alive)...
  EXPECT_LT(waited, timeout + 10);  // ...and not much longer
  EXPECT_THAT(util::read_file(log_of(out, 0)), HasSubstr("stopped answering within 3 s"));
}

TEST(DistributedEvaluationTest, GatheredFeaturesAreBitIdenticalToOneProcess) {
  testing::TempDir dir;
  data::synth::generate(testing::small_synth(10, 2, 5, 64, 32, 4, 1), dir / "data");
  const data::Dataset dataset = data::load_dataset(dir / "data");
  tensor::configure_torch_threads(1);
  BackboneOptions backbone;
  backbone.arch = "resnet_tiny";
  torch::manual_seed(5);
  ReidModel model(ModelOptions{backbone, 0, true});
  data::TransformOptions transform;
  transform.height = 64;
  transform.width = 32;
  data::EvalLoaderOptions options;
  options.batch_size = 7;  // several batches, a short last one, an uneven split over 2 ranks
  const FeatureSet single = extract_features(model, dataset.root, dataset.gallery, transform, options);
  const nlohmann::json single_metrics = evaluate_model(model, dataset, transform, "euclidean", true, options);
  testing::run_ranks(kWorld, [&](dist::Communicator& comm) {
    ReidModel mine{nullptr};
    {
      std::lock_guard seeded(tensor::torch_generator_mutex());  // ranks are threads here
      torch::manual_seed(5);
      mine = ReidModel(ModelOptions{backbone, 0, true});
    }
    const FeatureSet gathered =
        extract_features(mine, dataset.root, dataset.gallery, transform, options, &comm);
    EXPECT_TRUE(torch::equal(gathered.features, single.features));
    EXPECT_EQ(gathered.pids, single.pids);
    EXPECT_EQ(gathered.camids, single.camids);
    EXPECT_EQ(evaluate_model(mine, dataset, transform, "euclidean", true, options, &comm).dump(),
              single_metrics.dump());
  });
}

}  // namespace
}  // namespace ppreid::reid
