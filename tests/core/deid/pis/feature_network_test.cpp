#include "core/deid/pis/feature_network.h"

#include <gtest/gtest.h>

#include "core/deid/pis/pis_images.h"
#include "core/reid/state_dict.h"
#include "core/util/error.h"
#include "tests/support/temp_dir.h"

namespace ppreid::deid::pis {
namespace {

reid::NamedTensors state_of(torch::nn::Module& m) {
  reid::NamedTensors out;
  for (const auto& item : m.named_parameters()) out.emplace_back(item.key(), item.value().detach().clone());
  // A torchvision file also holds the classifier, which must be ignored.
  out.emplace_back("classifier.0.weight", torch::zeros({4, 4}));
  return out;
}

TEST(PisFeatures, Vgg19ImportReproducesTheSavedNetwork) {
  testing::TempDir dir;
  torch::manual_seed(1);
  Vgg19Features source;
  reid::save_state_dict(dir / "vgg19.pth", state_of(*source));
  Vgg19Features loaded;
  loaded->load_torchvision(dir / "vgg19.pth");
  torch::Tensor x = torch::randn({1, 3, 64, 32});
  auto a = source(x), b = loaded(x);
  ASSERT_EQ(a.size(), 5u);  // relu1_2 .. relu5_2
  EXPECT_EQ(a[0].size(1), 64);
  EXPECT_EQ(a[4].size(1), 512);
  EXPECT_EQ(a[4].size(2), 4);  // four 2x2 pools before relu5_2: 64 / 16
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << i;
}

TEST(PisFeatures, Vgg19ImportNamesAMissingOrMisshapenKey) {
  testing::TempDir dir;
  Vgg19Features source;
  auto state = state_of(*source);
  auto missing = state;
  missing.erase(missing.begin());
  reid::save_state_dict(dir / "missing.pth", missing);
  auto wrong = state;
  wrong[0].second = torch::zeros({3, 3});
  reid::save_state_dict(dir / "wrong.pth", wrong);
  Vgg19Features target;
  try {
    target->load_torchvision(dir / "missing.pth");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("features.0.weight"), std::string::npos) << e.what();
  }
  EXPECT_THROW(target->load_torchvision(dir / "wrong.pth"), Error);
}

TEST(PisFeatures, RandomNetworkIsFixedBySeedAndFrozen) {
  FeatureLossOptions o;
  o.network = "random";
  auto a = make_feature_network(o), b = make_feature_network(o);
  o.random_seed = 8;
  auto c = make_feature_network(o);
  torch::Tensor x = torch::rand({2, 3, 32, 16}) * 2 - 1;
  auto fa = a->features(x), fb = b->features(x), fc = c->features(x);
  ASSERT_EQ(fa.size(), 3u);
  EXPECT_TRUE(torch::equal(fa[2], fb[2]));
  EXPECT_FALSE(torch::equal(fa[2], fc[2]));
  for (const auto& p : a->module().parameters()) EXPECT_FALSE(p.requires_grad());
}

TEST(PisFeatures, ReconstructionLossIsZeroForIdenticalImagesAndWeighted) {
  FeatureLossOptions o;
  o.alpha_rec = 0;
  o.pixel_l1 = 2.0;
  torch::Tensor x = torch::zeros({1, 3, 4, 4}), y = torch::full({1, 3, 4, 4}, 0.25);
  EXPECT_NEAR(reconstruction_loss(nullptr, x, y, o).item<double>(), 0.5, 1e-7);  // 2 * 0.25
  o.alpha_rec = 5;
  auto net = make_feature_network(o);
  EXPECT_EQ(reconstruction_loss(net.get(), y, y, o).item<double>(), 0.0);
  EXPECT_GT(reconstruction_loss(net.get(), x, y, o).item<double>(), 0.5);
  EXPECT_THROW(reconstruction_loss(nullptr, x, y, o), Error);
}

TEST(PisImages, PaddingRoundTripAndStickmanFlip) {
  Geometry g{64, 32, 64};
  cv::Mat bgr(128, 64, CV_8UC3, cv::Scalar(10, 200, 90));
  torch::Tensor t = network_image(bgr, g);
  ASSERT_EQ(t.sizes(), (std::vector<std::int64_t>{3, 64, 64}));
  EXPECT_EQ(t[0][0][0].item<float>(), 0.0f);       // padding is mid-gray
  EXPECT_NEAR(t[0][0][16].item<float>(), 90 / 127.5 - 1, 1e-6);  // R of the BGR (10,200,90)
  cv::Mat back = output_image(t, g, 128, 64);
  ASSERT_EQ(back.size(), bgr.size());
  EXPECT_EQ(cv::norm(back, bgr, cv::NORM_INF), 0.0);

  torch::Tensor s = torch::zeros({1, 3, 2, 2});
  s[0][0][0][0] = 1;  // right side, left column
  torch::Tensor f = flip_stickman(s);
  EXPECT_EQ(f[0][1][0][1].item<float>(), 1.0f);  // now the left side, right column
  EXPECT_EQ(f[0][0].sum().item<float>(), 0.0f);
}

}  // namespace
}  // namespace ppreid::deid::pis
