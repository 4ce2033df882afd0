#include "simulations/site_faults.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "tests/support/errors.h"

namespace ppreid::sim {
namespace {
using namespace std::chrono_literals;
using ::testing::HasSubstr;

at::Tensor floats(std::vector<float> v) { return torch::tensor(v, torch::kFloat32); }

// A two-tensor "model": weights to attack and a BatchNorm-style counter no attack may touch.
reid::NamedTensors model(std::vector<float> w, std::int64_t counter = 5) {
  return {{"w", floats(std::move(w))}, {"bn.num_batches_tracked", torch::tensor({counter})}};
}

void expect_values(const at::Tensor& t, std::vector<double> want) {
  ASSERT_EQ(t.numel(), static_cast<std::int64_t>(want.size()));
  const at::Tensor d = t.to(torch::kFloat64).contiguous();
  for (std::size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(d.data_ptr<double>()[i], want[i], 1e-6) << "coordinate " << i;
}

TEST(SiteFaultsTest, ScaleBoostsAndSignFlipReversesTheChange) {
  const reid::NamedTensors global = model({1, 2, 3});
  reid::NamedTensors boosted = model({2, 2, 1}, 7);  // change +1, 0, -2
  scale_change(global, boosted, 10);
  expect_values(boosted[0].second, {11, 2, -17});
  EXPECT_EQ(boosted[1].second.item<std::int64_t>(), 7);  // integer tensors stay as trained
  reid::NamedTensors flipped = model({2, 2, 1}, 7);
  scale_change(global, flipped, -1);  // sign_flip, factor 1
  expect_values(flipped[0].second, {0, 2, 5});
  reid::NamedTensors flipped3 = model({2, 2, 1});
  scale_change(global, flipped3, -3);  // sign_flip, factor 3
  expect_values(flipped3[0].second, {-2, 2, 9});
}

TEST(SiteFaultsTest, GaussianNoiseReplacesTheChangeAndIsReproducible) {
  const reid::NamedTensors global = {{"w", torch::full({200000}, 0.5f)},
                                     {"n", torch::tensor({std::int64_t{3}})}};
  auto noisy = [&](std::uint64_t seed) {
    reid::NamedTensors shared = {{"w", torch::full({200000}, 9.0f)},  // the real change: ignored
                                 {"n", torch::tensor({std::int64_t{4}})}};
    replace_with_noise(global, shared, 0.1, seed);
    return shared;
  };
  const reid::NamedTensors a = noisy(gaussian_seed(1, 2, 3));
  const at::Tensor noise = a[0].second.to(torch::kFloat64) - 0.5;
  // 200k draws: the mean within 5 standard errors of 0, the deviation within 1% of sigma.
  EXPECT_NEAR(noise.mean().item<double>(), 0.0, 5 * 0.1 / std::sqrt(200000.0));
  EXPECT_NEAR(noise.std().item<double>(), 0.1, 0.001);
  EXPECT_EQ(a[1].second.item<std::int64_t>(), 4);
  EXPECT_TRUE(torch::equal(a[0].second, noisy(gaussian_seed(1, 2, 3))[0].second));
  // Another round, site or simulation seed: other noise.
  for (std::uint64_t other : {gaussian_seed(1, 2, 4), gaussian_seed(1, 3, 3), gaussian_seed(2, 2, 3)})
    EXPECT_FALSE(torch::equal(a[0].second, noisy(other)[0].second));
}

TEST(SiteFaultsTest, InverseNormalCdfMatchesReferenceQuantiles) {
  // Python's statistics.NormalDist().inv_cdf.
  EXPECT_NEAR(inverse_normal_cdf(4.0 / 7), 0.18001236979270493, 1e-14);
  EXPECT_NEAR(inverse_normal_cdf(5.0 / 7), 0.5659488219328631, 1e-14);
  EXPECT_NEAR(inverse_normal_cdf(0.975), 1.9599639845400536, 1e-13);
  EXPECT_NEAR(inverse_normal_cdf(0.001), -3.090232306167813, 1e-12);
  EXPECT_NEAR(inverse_normal_cdf(1e-10), -6.361340902404056, 1e-10);
  EXPECT_NEAR(inverse_normal_cdf(0.9999), 3.7190164854557084, 1e-11);
  EXPECT_EQ(inverse_normal_cdf(0.5), 0.0);
  EXPECT_THAT(testing::error_of([] { inverse_normal_cdf(1.0); }), HasSubstr("outside (0, 1)"));
}

TEST(SiteFaultsTest, AlieZFollowsBaruchEtAl) {
  // n = 7, f = 1: s = floor(4.5) - 1 = 3, z = Phi^-1(4/7); f = 2: s = 2, z = Phi^-1(5/7).
  EXPECT_NEAR(alie_z(7, 1), 0.18001236979270493, 1e-14);
  EXPECT_NEAR(alie_z(7, 2), 0.5659488219328631, 1e-14);
  // n = 4, f = 1: s = 2, z = Phi^-1(1/2) = 0.
  EXPECT_EQ(alie_z(4, 1), 0.0);
  // f = 4 of 7: s = 0, the colluders already hold a majority.
  EXPECT_THAT(testing::error_of([] { alie_z(7, 4); }), HasSubstr("majority"));
  EXPECT_THAT(testing::error_of([] { alie_z(3, 3); }), HasSubstr("colluders < sites"));
}

TEST(SiteFaultsTest, AlieSendsMeanMinusZTimesTheSampleStd) {
  // Per coordinate: {1,3,5} mean 3 std 2; {2,2,2} mean 2 std 0; {3,5,7} mean 5 std 2.
  const std::vector<reid::NamedTensors> honest = {model({1, 2, 3}), model({3, 2, 5}),
                                                  model({5, 2, 7})};
  const reid::NamedTensors own = model({100, 100, 100}, 9);
  const reid::NamedTensors out = alie_update(honest, 0.5, own);
  expect_values(out[0].second, {2, 2, 4});
  EXPECT_EQ(out[0].second.scalar_type(), torch::kFloat32);
  EXPECT_EQ(out[1].second.item<std::int64_t>(), 9);  // not averaged: the colluder's own
  const reid::NamedTensors paper = alie_update(honest, alie_z(7, 1), own);
  const double z = 0.18001236979270493;
  expect_values(paper[0].second, {3 - 2 * z, 2, 5 - 2 * z});
  // One honest update has no spread: its values.
  expect_values(alie_update({model({1, 2, 3})}, 0.5, own)[0].second, {1, 2, 3});
  EXPECT_THAT(testing::error_of([&] { alie_update({model({1, 2})}, 0.5, own); }),
              HasSubstr("layout"));
  EXPECT_THAT(testing::error_of([&] { alie_update({}, 0.5, own); }), HasSubstr("no honest"));
}

TEST(SiteFaultsTest, AlieColludersWaitForEveryHonestSiteAndSendTheSameUpdate) {
  AlieBoard board({"site-1", "site-2", "site-3"}, 0.5, 30s);
  board.post(1, "site-1", model({1, 2, 3}));
  board.leave("site-3");  // gone: nobody waits for it
  std::optional<reid::NamedTensors> first, second;
  std::atomic<int> done{0};
  std::thread colluder_a([&] {
    first = board.craft(1, "site-4", model({0, 0, 0}));
    ++done;
  });
  std::thread colluder_b([&] {
    second = board.craft(1, "site-5", model({0, 0, 0}));
    ++done;
  });
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(done.load(), 0);  // still waiting for site-2
  reid::NamedTensors trained = model({5, 2, 7});
  board.post(1, "site-2", trained);
  trained[0].second.fill_(-1);  // the site trains on: the board kept a copy
  colluder_a.join();
  colluder_b.join();
  ASSERT_TRUE(first && second);
  // {1,5}: mean 3, std 2.828...; {2,2}: 2; {3,7}: mean 5, std 2.828...
  const double spread = std::sqrt(8.0);
  expect_values((*first)[0].second, {3 - 0.5 * spread, 2, 5 - 0.5 * spread});
  EXPECT_TRUE(torch::equal((*first)[0].second, (*second)[0].second));
}

TEST(SiteFaultsTest, AlieCraftsFromWhatItHasAfterTheWaitAndNothingWithoutHonestUpdates) {
  AlieBoard board({"site-1", "site-2"}, 1.0, 200ms);
  board.post(3, "site-1", model({4, 4, 4}));
  const auto started = std::chrono::steady_clock::now();
  const auto crafted = board.craft(3, "site-3", model({0, 0, 0}));
  EXPECT_GE(std::chrono::steady_clock::now() - started, 200ms);  // waited for site-2
  ASSERT_TRUE(crafted.has_value());
  expect_values((*crafted)[0].second, {4, 4, 4});
  EXPECT_FALSE(board.craft(4, "site-3", model({0, 0, 0})).has_value());  // nobody posted
  board.close();  // the federation is over: no more waiting
  const auto closed = std::chrono::steady_clock::now();
  EXPECT_FALSE(board.craft(5, "site-3", model({0, 0, 0})).has_value());
  EXPECT_LT(std::chrono::steady_clock::now() - closed, 150ms);
}

TEST(SiteFaultsTest, LabelFlipGivesEveryImageAnotherOfTheSitesIdentities) {
  constexpr int kIds = 4, kImages = 5;
  std::vector<data::ImageRecord> train;
  for (int p = 0; p < kIds; ++p)
    for (int k = 0; k < kImages; ++k)
      train.push_back({"bounding_box_train/" + std::to_string(p) + "_" + std::to_string(k) + ".jpg",
                       100 + p, 0, p});
  std::vector<data::ImageRecord> flipped = train;
  flip_labels(flipped, kIds);
  std::vector<std::set<int>> labels_of(kIds);
  for (std::size_t i = 0; i < train.size(); ++i) {
    EXPECT_NE(flipped[i].label, train[i].label) << train[i].path;
    EXPECT_GE(flipped[i].label, 0);
    EXPECT_LT(flipped[i].label, kIds);
    EXPECT_EQ(flipped[i].pid, train[i].pid);  // the file and its person are unchanged
    labels_of[static_cast<std::size_t>(train[i].label)].insert(flipped[i].label);
  }
  // Image k of identity p: (p + 1 + k mod 3) mod 4, so identity 0's five images get 1, 2, 3, 1, 2.
  EXPECT_EQ(flipped[0].label, 1);
  EXPECT_EQ(flipped[2].label, 3);
  EXPECT_EQ(flipped[4].label, 2);
  // The images of one person are spread over all the other labels, so the metric losses pull
  // them apart.
  for (int p = 0; p < kIds; ++p) EXPECT_EQ(labels_of[static_cast<std::size_t>(p)].size(), 3u);
  EXPECT_THAT(testing::error_of([&] { flip_labels(train, 1); }), HasSubstr("at least 2"));
}

TEST(SiteFaultsTest, HooksLieAboutSamplesPoisonLabelsAndColludeOnTheBoard) {
  FaultSpec lie;
  lie.kind = FaultSpec::Kind::kSampleLie;
  lie.site = "site-2";
  lie.factor = 10;
  lie.from_round = 3;
  const client::SiteHooks liar = fault_hooks({lie}, FaultContext{1, 1, "site-2", nullptr});
  ASSERT_TRUE(liar.claimed_samples);
  EXPECT_EQ(liar.claimed_samples(0, 40), 400u);  // the Hello lies from the start
  EXPECT_EQ(liar.claimed_samples(2, 40), 40u);   // before from_round: the truth
  EXPECT_EQ(liar.claimed_samples(3, 40), 400u);
  EXPECT_FALSE(liar.on_train_split);

  FaultSpec flip;
  flip.kind = FaultSpec::Kind::kLabelFlip;
  const client::SiteHooks poisoner = fault_hooks({flip}, FaultContext{});
  ASSERT_TRUE(poisoner.on_train_split);
  std::vector<data::ImageRecord> train = {{"a.jpg", 1, 0, 0}, {"b.jpg", 2, 0, 1}};
  poisoner.on_train_split(train, 2);
  EXPECT_EQ(train[0].label, 1);
  EXPECT_EQ(train[1].label, 0);

  // An honest site posts what it sends; the colluder replaces its update by the crafted one.
  AlieBoard board({"site-1"}, 0.5, 10s);
  const client::SiteHooks honest = fault_hooks({}, FaultContext{1, 0, "site-1", &board});
  FaultSpec alie;
  alie.kind = FaultSpec::Kind::kAlie;
  alie.site = "site-2";
  const client::SiteHooks colluder = fault_hooks({alie}, FaultContext{1, 1, "site-2", &board});
  const reid::NamedTensors global = model({0, 0, 0});
  reid::NamedTensors sent = model({1, 2, 3});
  EXPECT_EQ(honest.before_update(1, global, sent).action, client::UpdateAction::kSend);
  reid::NamedTensors crafted = model({9, 9, 9});
  colluder.before_update(1, global, crafted);
  expect_values(crafted[0].second, {1, 2, 3});  // one honest update: its values

  // Sign flip through the hooks, and the gaussian noise seeded by the simulation seed.
  FaultSpec sign;
  sign.kind = FaultSpec::Kind::kSignFlip;
  reid::NamedTensors flipped = model({2, 2, 1});
  fault_hooks({sign}, FaultContext{}).before_update(1, model({1, 2, 3}), flipped);
  expect_values(flipped[0].second, {0, 2, 5});
  FaultSpec gauss;
  gauss.kind = FaultSpec::Kind::kGaussian;
  gauss.sigma = 1;
  auto noise = [&](std::uint64_t seed, std::uint64_t round) {
    reid::NamedTensors s = model({1, 2, 3});
    fault_hooks({gauss}, FaultContext{seed, 4, "site-5", nullptr}).before_update(round, global, s);
    return s[0].second;
  };
  EXPECT_TRUE(torch::equal(noise(7, 2), noise(7, 2)));
  EXPECT_FALSE(torch::equal(noise(7, 2), noise(7, 3)));
  EXPECT_FALSE(torch::equal(noise(7, 2), noise(8, 2)));
}

}  // namespace
}  // namespace ppreid::sim
