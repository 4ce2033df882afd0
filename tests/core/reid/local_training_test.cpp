// One federated round of local training on tiny synthetic data.
#include "core/reid/local_training.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/data/synth/generator.h"
#include "core/reid/train_config.h"
#include "tests/support/errors.h"
#include "tests/support/synth.h"
#include "tests/support/temp_dir.h"

namespace ppreid::reid {
namespace {

using ::testing::HasSubstr;

class LocalTrainingTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    data::synth::generate(testing::small_synth(16, 2, 8, 64, 32, 11), *dir_ / "data");
    store_ = new data::Dataset(data::load_dataset(*dir_ / "data"));
  }
  static void TearDownTestSuite() {
    delete store_;
    delete dir_;
  }

  void SetUp() override {
    config_ = load_train_config(std::string(PPREID_SOURCE_DIR) + "/configs/train/tiny.yaml");
    settings_.local_epochs = 1;
    settings_.learning_rate = 3.5e-3;
    settings_.p = 4;
    settings_.k = 4;
    settings_.seed = 5;
    settings_.round = 1;
  }

  // Models built from the same torch seed start identical (head included).
  ReidModel make_model(std::uint64_t seed = 1) const {
    torch::manual_seed(seed);
    return ReidModel(ModelOptions{config_.backbone, store_->num_train_ids, true});
  }
  CenterLoss make_center(const ReidModel& model) const {
    torch::manual_seed(99);
    return CenterLoss(store_->num_train_ids, model->feature_dim());
  }

  static double distance(const NamedTensors& a, const NamedTensors& b) {
    double sum = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
      sum += (a[i].second.to(torch::kDouble) - b[i].second.to(torch::kDouble)).square().sum().item<double>();
    return std::sqrt(sum);
  }
  static bool identical(const NamedTensors& a, const NamedTensors& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if (a[i].first != b[i].first || !torch::equal(a[i].second, b[i].second)) return false;
    return true;
  }

  static testing::TempDir* dir_;
  static data::Dataset* store_;
  TrainConfig config_;
  LocalRoundSettings settings_;
};
testing::TempDir* LocalTrainingTest::dir_ = nullptr;
data::Dataset* LocalTrainingTest::store_ = nullptr;

TEST_F(LocalTrainingTest, LossGoesDownOverRoundsAndReportsTheRound) {
  ReidModel model = make_model();
  CenterLoss center = make_center(model);
  NamedTensors global = model->shared_state();
  settings_.local_epochs = 2;
  std::vector<double> losses;
  for (std::uint64_t round = 0; round < 5; ++round) {
    settings_.round = round;
    LocalRoundResult r = train_local_round(model, center, *store_, config_, global, settings_);
    ASSERT_TRUE(r.completed);
    EXPECT_EQ(r.samples, store_->train.size());
    EXPECT_GT(r.steps, 0);
    EXPECT_GT(r.seconds, 0.0);
    EXPECT_GT(r.images_per_second, 0.0);
    EXPECT_DOUBLE_EQ(r.mean_loss.proximal, 0.0);
    losses.push_back(r.mean_loss.total);
    global = model->shared_state();  // a one-site federation: the update is the next global
  }
  EXPECT_LT(losses.back(), 0.8 * losses.front())
      << "losses by round: " << ::testing::PrintToString(losses);
}

TEST_F(LocalTrainingTest, LoadsTheGlobalSharedWeightsAndKeepsTheHead) {
  ReidModel model = make_model(1);
  CenterLoss center = make_center(model);
  const NamedTensors head_before = model->head_state();
  const NamedTensors global = make_model(2)->shared_state();  // other values, same names
  ASSERT_GT(distance(model->shared_state(), global), 0.0);

  // Cancelled before the first step: only the load happened.
  int calls = 0;
  LocalRoundResult r = train_local_round(model, center, *store_, config_, global, settings_,
                                         [&](const LocalRoundProgress& p) {
                                           EXPECT_EQ(p.step, 0);
                                           EXPECT_GT(p.steps_planned, 0);
                                           ++calls;
                                           return false;
                                         });
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(r.completed);
  EXPECT_EQ(r.steps, 0);
  EXPECT_TRUE(identical(model->shared_state(), global));
  EXPECT_TRUE(identical(model->head_state(), head_before));
}

TEST_F(LocalTrainingTest, CallbackStopsTheRoundMidway) {
  ReidModel model = make_model();
  CenterLoss center = make_center(model);
  settings_.local_epochs = 3;
  std::vector<int> seen;
  LocalRoundResult r = train_local_round(model, center, *store_, config_, model->shared_state(),
                                         settings_, [&](const LocalRoundProgress& p) {
                                           seen.push_back(p.step);
                                           return p.step < 2;
                                         });
  EXPECT_FALSE(r.completed);
  EXPECT_EQ(r.steps, 2);
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2}));
}

TEST_F(LocalTrainingTest, FedProxPullsTheWeightsTowardTheGlobalOnes) {
  const NamedTensors global = make_model(1)->shared_state();
  settings_.local_epochs = 2;
  auto drift = [&](double mu) {
    ReidModel model = make_model(1);
    CenterLoss center = make_center(model);
    settings_.fedprox_mu = mu;
    LocalRoundResult r = train_local_round(model, center, *store_, config_, global, settings_);
    EXPECT_TRUE(r.completed);
    if (mu > 0) {
      EXPECT_GT(r.mean_loss.proximal, 0.0);
    }
    NamedTensors params = model->shared_parameters();
    NamedTensors anchor;
    for (const auto& [name, t] : params)
      for (const auto& [gname, g] : global)
        if (gname == name) anchor.emplace_back(gname, g);
    return distance(params, anchor);
  };
  const double plain = drift(0.0);
  const double prox = drift(5.0);
  EXPECT_GT(plain, 0.0);
  EXPECT_LT(prox, 0.9 * plain) << "mu=0: " << plain << ", mu=5: " << prox;
}

TEST_F(LocalTrainingTest, SameSeedAndRoundGiveBitwiseIdenticalWeights) {
  auto train = [&](std::uint64_t round) {
    ReidModel model = make_model(1);
    CenterLoss center = make_center(model);
    settings_.round = round;
    train_local_round(model, center, *store_, config_, model->shared_state(), settings_);
    NamedTensors all = model->shared_state();
    for (auto& t : model->head_state()) all.push_back(t);
    all.emplace_back("centers", center->centers.detach().clone());
    return all;
  };
  const NamedTensors a = train(3), b = train(3), c = train(4);
  EXPECT_TRUE(identical(a, b));
  EXPECT_FALSE(identical(a, c)) << "another round must see another batch plan";
}

TEST_F(LocalTrainingTest, NonFiniteLossIsAnErrorNamingTheRound) {
  ReidModel model = make_model();
  CenterLoss center = make_center(model);
  NamedTensors global = model->shared_state();
  for (auto& [name, t] : global)
    if (name.rfind("neck.", 0) == 0 && t.is_floating_point())
      t.fill_(std::numeric_limits<float>::quiet_NaN());
  settings_.round = 7;
  const std::string error = testing::error_of(
      [&] { train_local_round(model, center, *store_, config_, global, settings_); });
  EXPECT_THAT(error, HasSubstr("the training loss became"));
  EXPECT_THAT(error, HasSubstr("in round 7"));
}

TEST_F(LocalTrainingTest, RefusesMoreIdentitiesPerBatchThanTheStoreHas) {
  ReidModel model = make_model();
  CenterLoss center = make_center(model);
  settings_.p = store_->num_train_ids + 1;
  EXPECT_THAT(testing::error_of([&] {
                train_local_round(model, center, *store_, config_, model->shared_state(),
                                  settings_);
              }),
              HasSubstr("lower batch_identities"));
}

}  // namespace
}  // namespace ppreid::reid
