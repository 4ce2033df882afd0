// Shapes through every PIS block, pixel-shuffle upsampling, Gaussian KL and latent mixing.
#include "core/deid/pis/network.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/deid/pis/gaussian.h"
#include "core/util/error.h"

namespace ppreid::deid::pis {
namespace {

NetworkOptions small_net(const std::string& variance = "unit", int latent_scales = 2) {
  NetworkOptions o;
  o.channels = {8, 16, 24};
  o.blocks = 2;
  o.latent_scales = latent_scales;
  o.latent_channels = 5;
  o.posterior_variance = variance;
  return o;
}

TEST(PisBlocks, ResBlockKeepsShapeAndIsIdentityWithZeroConv) {
  ResBlock plain(6), skip(6, 4);
  torch::Tensor x = torch::randn({2, 6, 8, 4}), a = torch::randn({2, 4, 8, 4});
  EXPECT_EQ(plain(x).sizes(), x.sizes());
  EXPECT_EQ(skip(x, a).sizes(), x.sizes());
  EXPECT_THROW(skip(x), Error);
  torch::NoGradGuard no_grad;
  for (auto& p : plain->parameters()) p.zero_();
  EXPECT_TRUE(torch::equal(plain(x), x));  // the residual path is exactly x
}

TEST(PisBlocks, SubPixelUpRearrangesChannelGroupsInto2x2Blocks) {
  SubPixelUp up(4, 1);
  {
    // A conv that copies input channel c to output channel c (3x3 kernel, centre tap only).
    torch::NoGradGuard no_grad;
    for (auto& p : up->parameters()) p.zero_();
    auto w = up->named_parameters()["conv.weight"];
    for (int c = 0; c < 4; ++c) w[c][c][1][1] = 1.0;
  }
  torch::Tensor x = torch::arange(4 * 2 * 3, torch::kFloat32).view({1, 4, 2, 3});
  torch::Tensor y = up(x);
  ASSERT_EQ(y.sizes(), (std::vector<std::int64_t>{1, 1, 4, 6}));
  // Pixel shuffle: out[2h + i][2w + j] = in channel (2i + j) at (h, w).
  for (int h = 0; h < 2; ++h)
    for (int w = 0; w < 3; ++w)
      for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j)
          EXPECT_EQ(y[0][0][2 * h + i][2 * w + j].item<float>(), x[0][2 * i + j][h][w].item<float>());
}

TEST(PisBlocks, EncoderGivesOneMapPerScale) {
  Encoder e(3, std::vector<int>{8, 16, 24}, 1);
  auto maps = e(torch::randn({2, 3, 32, 16}));
  ASSERT_EQ(maps.size(), 3u);
  EXPECT_EQ(maps[0].sizes(), (std::vector<std::int64_t>{2, 8, 32, 16}));
  EXPECT_EQ(maps[1].sizes(), (std::vector<std::int64_t>{2, 16, 16, 8}));
  EXPECT_EQ(maps[2].sizes(), (std::vector<std::int64_t>{2, 24, 8, 4}));
}

TEST(PisNet, ShapesThroughPriorPosteriorDecoderAndClassifier) {
  for (const std::string pooling : {"average", "flatten"}) {
    NetworkOptions o = small_net("learned");
    o.app_pooling = pooling;
    PisNet net(o, 7, 32, 16);
    torch::Tensor x = torch::rand({3, 3, 32, 16}) * 2 - 1, s = torch::rand({3, 3, 32, 16});
    auto structure = net->structure(s);
    ASSERT_EQ(structure.size(), 3u);
    LatentGaussian prior = net->prior(structure);
    LatentGaussian q = net->posterior(x, s);
    ASSERT_EQ(q.mu.size(), 2u);  // two coarsest scales: 16x8 and 8x4
    EXPECT_EQ(q.mu[0].sizes(), (std::vector<std::int64_t>{3, 5, 16, 8}));
    EXPECT_EQ(q.mu[1].sizes(), (std::vector<std::int64_t>{3, 5, 8, 4}));
    ASSERT_EQ(q.logvar.size(), 2u);
    EXPECT_TRUE(prior.unit_variance());
    EXPECT_EQ(prior.mu[1].sizes(), q.mu[1].sizes());
    torch::Tensor out = net->decode(q.mu, structure);
    EXPECT_EQ(out.sizes(), x.sizes());
    EXPECT_LE(out.abs().max().item<float>(), 1.0f);  // tanh output, images in [-1, 1]
    EXPECT_EQ(net->classify(q.mu).sizes(), (std::vector<std::int64_t>{3, 7}));
  }
}

TEST(PisNet, UnitVariancePosteriorHasNoLogvarAndBadSizesAreRefused) {
  PisNet net(small_net("unit", 1), 0, 32, 16);
  auto q = net->posterior(torch::zeros({1, 3, 32, 16}), torch::zeros({1, 3, 32, 16}));
  EXPECT_TRUE(q.unit_variance());
  EXPECT_THROW(net->classify(q.mu), Error);  // built without a classifier
  EXPECT_THROW(PisNet(small_net(), 3, 30, 16), Error);  // 30 is not divisible by 4
  auto structure = net->structure(torch::zeros({1, 3, 32, 16}));
  EXPECT_THROW(net->decode({q.mu[0], q.mu[0]}, structure), Error);  // one latent scale expected
}

LatentGaussian one(std::vector<float> mu, std::vector<float> logvar = {}) {
  LatentGaussian g;
  g.mu.push_back(torch::tensor(mu).view({1, static_cast<long>(mu.size()), 1, 1}));
  if (!logvar.empty())
    g.logvar.push_back(torch::tensor(logvar).view({1, static_cast<long>(logvar.size()), 1, 1}));
  return g;
}

TEST(PisGaussian, KlOfKnownGaussians) {
  struct Case {
    LatentGaussian q, p;
    double expected;
  };
  const double log4 = std::log(4.0);
  const Case cases[] = {
      {one({1, 2}), one({0, 0}), 2.5},                      // 0.5 * (1 + 4)
      {one({0}, {static_cast<float>(log4)}), one({0}), 0.5 * (4 - 1 - log4)},
      {one({1}), one({0}, {static_cast<float>(log4)}), 0.5 * (log4 + 2.0 / 4 - 1)},
      {one({0.5f, -1}, {0, 0}), one({0.5f, -1}, {0, 0}), 0.0},
  };
  for (const Case& c : cases) EXPECT_NEAR(kl_divergence(c.q, c.p).item<double>(), c.expected, 1e-6);
}

TEST(PisGaussian, KlSumsScalesAndAveragesTheBatch) {
  LatentGaussian q, p;
  q.mu = {torch::tensor({1.f, 3.f}).view({2, 1, 1, 1}), torch::ones({2, 2, 1, 1})};
  p.mu = {torch::zeros({2, 1, 1, 1}), torch::zeros({2, 2, 1, 1})};
  // Image 0: 0.5 * (1 + 2) = 1.5; image 1: 0.5 * (9 + 2) = 5.5; mean 3.5.
  EXPECT_NEAR(kl_divergence(q, p).item<double>(), 3.5, 1e-6);
  LatentGaussian wrong;
  wrong.mu = {torch::zeros({2, 1, 1, 1})};
  EXPECT_THROW(kl_divergence(q, wrong), Error);
}

TEST(PisGaussian, MixIsTheWeightedMeanWithUnitVariance) {
  LatentGaussian a = one({2, 0}, {1, 1}), b = one({0, 4});
  LatentGaussian m = mix_latents({a, b}, {0.25, 0.75});
  EXPECT_TRUE(m.unit_variance());
  EXPECT_TRUE(torch::allclose(m.mu[0].flatten(), torch::tensor({0.5f, 3.0f})));
  EXPECT_THROW(mix_latents({a, b}, {1.0}), Error);
}

TEST(PisGaussian, ReparameterizationHasTheRightMoments) {
  torch::manual_seed(3);
  LatentGaussian g;
  g.mu = {torch::full({20000, 1, 1, 1}, 2.0)};
  g.logvar = {torch::full({20000, 1, 1, 1}, std::log(0.25))};
  torch::Tensor z = reparameterize(g)[0];
  EXPECT_NEAR(z.mean().item<double>(), 2.0, 0.02);
  EXPECT_NEAR(z.std().item<double>(), 0.5, 0.02);
}

}  // namespace
}  // namespace ppreid::deid::pis
