#include "core/reid/proximal.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/reid/model.h"
#include "tests/support/errors.h"

namespace ppreid::reid {
namespace {

using ::testing::HasSubstr;

TEST(ProximalTerm, MatchesHandComputedValue) {
  // w - w_g = [1, -2] and [[0.5]]: squared norm 1 + 4 + 0.25 = 5.25; mu/2 = 0.05 -> 0.2625.
  NamedTensors local = {{"a", torch::tensor({2.0f, 0.0f})}, {"b", torch::tensor({{1.5f}})}};
  NamedTensors global = {{"b", torch::tensor({{1.0f}})}, {"a", torch::tensor({1.0f, 2.0f})}};
  EXPECT_NEAR(proximal_term(local, global, 0.1).item<double>(), 0.2625, 1e-7);
  EXPECT_EQ(proximal_term(local, global, 0.0).item<double>(), 0.0);
}

TEST(ProximalTerm, GradientIsMuTimesDistanceToGlobal) {
  torch::manual_seed(3);
  const double mu = 0.37;
  torch::Tensor w1 = torch::randn({4, 3}).requires_grad_(true);
  torch::Tensor w2 = torch::randn({5}).requires_grad_(true);
  torch::Tensor g1 = torch::randn({4, 3}), g2 = torch::randn({5});
  torch::Tensor term = proximal_term({{"w1", w1}, {"w2", w2}}, {{"w1", g1}, {"w2", g2}}, mu);
  term.backward();
  EXPECT_TRUE(torch::allclose(w1.grad(), mu * (w1.detach() - g1), 1e-6, 1e-7));
  EXPECT_TRUE(torch::allclose(w2.grad(), mu * (w2.detach() - g2), 1e-6, 1e-7));
}

TEST(ProximalTerm, WorksOnTheSharedParametersOfAModel) {
  ModelOptions options;
  options.backbone.arch = "resnet_tiny";
  options.num_classes = 4;
  ReidModel model(options);
  NamedTensors global = model->shared_state();  // the Task's weights: identical at first
  NamedTensors live = model->shared_parameters();
  for (const auto& [name, tensor] : live) {
    EXPECT_EQ(name.rfind("classifier.", 0), std::string::npos) << name;
    EXPECT_EQ(tensor.requires_grad(), name != "neck.bias") << name;  // BNNeck's bias is frozen
  }
  EXPECT_EQ(proximal_term(live, global, 0.01).item<double>(), 0.0);
  {
    torch::NoGradGuard no_grad;
    live.front().second.add_(1.0);  // moves the live model only
  }
  double expected = 0.01 / 2 * static_cast<double>(live.front().second.numel());
  torch::Tensor term = proximal_term(live, global, 0.01);
  EXPECT_NEAR(term.item<double>(), expected, 1e-6 * expected);
  term.backward();
  EXPECT_TRUE(torch::allclose(live.front().second.grad(),
                              torch::full_like(live.front().second, 0.01), 1e-6, 1e-7));
}

TEST(ProximalTerm, NamesMismatchedTensorsAndBadMu) {
  NamedTensors local = {{"a", torch::zeros({2})}, {"b", torch::zeros({3})}};
  NamedTensors global = {{"a", torch::zeros({3})}};
  std::string message = testing::error_of([&] { proximal_term(local, global, 0.1); });
  EXPECT_THAT(message, HasSubstr("'a' has another shape"));
  EXPECT_THAT(message, HasSubstr("'b' is not in the global weights"));
  EXPECT_THAT(testing::error_of([&] { proximal_term(local, local, -1.0); }), HasSubstr("mu"));
}

}  // namespace
}  // namespace ppreid::reid
