#include "core/attacks/gradient_inversion.h"

#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>

#include "core/attacks/lenet.h"
#include "core/util/error.h"

namespace ppreid::attacks {
namespace {

// A 32x32 RGB image in [0, 1] with structure (background ramp, a box, a disc), as [1,3,32,32].
torch::Tensor test_image() {
  cv::Mat img(32, 32, CV_8UC3);
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 32; ++x) img.at<cv::Vec3b>(y, x) = cv::Vec3b(40 + 5 * x, 200 - 4 * y, 90);
  cv::rectangle(img, {6, 4}, {18, 26}, {20, 30, 220}, cv::FILLED);
  cv::circle(img, {23, 12}, 6, {230, 220, 40}, cv::FILLED);
  torch::Tensor t = torch::from_blob(img.data, {32, 32, 3}, torch::kUInt8).clone();
  return t.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat32) / 255.0;
}

GradientModel model_of(LeNet& net) {
  return {[net](const torch::Tensor& x) mutable { return net->forward(x); }, net->parameters()};
}

TEST(GradientInversionTest, TheTrueLabelIsTheLastLayerRowWithTheNegativeSum) {
  torch::manual_seed(3);
  LeNet net(3, 32, 32, 10);
  const torch::Tensor image = test_image();
  for (std::int64_t label = 0; label < 10; ++label) {
    auto grads = shared_gradient(model_of(net), image, label);
    ASSERT_EQ(grads.size(), 8u);  // 3 convs + fc, weight and bias each
    EXPECT_EQ(infer_label(grads[6]), label);
    // By hand: row i of dL/dW is (p_i - [i == label]) * features, features = sigmoid > 0.
    torch::Tensor row_sums = grads[6].sum(1);
    EXPECT_LT(row_sums[label].item<float>(), 0.0f);
    EXPECT_EQ((row_sums > 0).sum().item<std::int64_t>(), 9);
  }
}

TEST(GradientInversionTest, LeNetShapesFollowTheReferenceStrides) {
  LeNet net(3, 32, 32, 10);
  EXPECT_EQ(net->fc->weight.size(1), 768);  // 12 x 8 x 8
  EXPECT_EQ(net->forward(torch::zeros({2, 3, 32, 32})).sizes(), (std::vector<std::int64_t>{2, 10}));
  for (const auto& p : net->parameters()) {
    EXPECT_LE(p.max().item<float>(), 0.5f);
    EXPECT_GE(p.min().item<float>(), -0.5f);
  }
}

TEST(GradientInversionTest, IdlgRecoversASingleImageAndItsLabelFromItsGradient) {
  torch::manual_seed(1);
  LeNet net(3, 32, 32, 10);
  const torch::Tensor image = test_image();
  const auto shared = shared_gradient(model_of(net), image, 7);
  InversionOptions options;
  options.iterations = 300;
  options.seed = 2;
  options.snapshots = {1, 10};
  InversionResult r = invert_gradient(model_of(net), shared, {1, 3, 32, 32}, 10, options);
  EXPECT_TRUE(r.label_from_gradient);
  EXPECT_EQ(r.label, 7);
  const double m = mse(r.image, image);
  EXPECT_LT(m, 1e-3) << "after " << r.iterations << " steps, distance " << r.distance;
  EXPECT_GT(psnr_from_mse(m), 30.0);
  ASSERT_EQ(r.snapshots.size(), 2u);
  EXPECT_GT(mse(r.snapshots[0].second, image), m);  // it got better over the steps
}

TEST(GradientInversionTest, AGradientOfAnotherModelIsRefused) {
  LeNet net(3, 32, 32, 10), other(3, 16, 16, 10);
  auto grads = shared_gradient(model_of(other), torch::rand({1, 3, 16, 16}), 1);
  EXPECT_THROW(invert_gradient(model_of(net), grads, {1, 3, 32, 32}, 10, {}), Error);
}

}  // namespace
}  // namespace ppreid::attacks
