#include "core/attacks/attack_models.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/attacks/lenet.h"
#include "tests/support/errors.h"

namespace ppreid::attacks {
namespace {

using ::testing::HasSubstr;

// An RGB image in [0, 1] with structure (two ramps and a disc), [1,3,H,W].
torch::Tensor test_image(int h, int w) {
  torch::Tensor y = torch::linspace(0, 1, h).view({1, 1, h, 1}).expand({1, 1, h, w});
  torch::Tensor x = torch::linspace(0, 1, w).view({1, 1, 1, w}).expand({1, 1, h, w});
  torch::Tensor disc = ((x - 0.5).pow(2) + (y - 0.4).pow(2) < 0.06).to(torch::kFloat32);
  return torch::cat({0.2 + 0.6 * x, 0.8 - 0.5 * y, 0.1 + 0.7 * disc}, 1).contiguous();
}

AttackModelOptions lenet_options(std::uint64_t seed = 0) {
  AttackModelOptions o;
  o.model = "lenet";
  o.height = o.width = 32;
  o.classes = 10;
  o.seed = seed;
  return o;
}

// The CLI's default reid input (attack_commands.cpp).
AttackModelOptions reid_options(std::uint64_t seed = 0) {
  AttackModelOptions o;
  o.model = "reid";
  o.arch = "resnet_tiny";
  o.height = 16;
  o.width = 12;
  o.classes = 10;
  o.seed = seed;
  return o;
}

std::vector<std::string> parameter_names(torch::nn::Module& m) {
  std::vector<std::string> names;
  for (const auto& item : m.named_parameters()) names.push_back(item.key());
  return names;
}

bool same_weights(const AttackModel& a, const AttackModel& b) {
  if (a.gradient_model.parameters.size() != b.gradient_model.parameters.size()) return false;
  for (std::size_t k = 0; k < a.gradient_model.parameters.size(); ++k)
    if (!torch::equal(a.gradient_model.parameters[k], b.gradient_model.parameters[k])) return false;
  return true;
}

TEST(AttackModelTest, LenetHasTheReferenceLayoutAndNames) {
  const AttackModel m = make_attack_model(lenet_options(1));
  EXPECT_EQ(m.names, (std::vector<std::string>{"conv1.weight", "conv1.bias", "conv2.weight",
                                               "conv2.bias", "conv3.weight", "conv3.bias",
                                               "fc.weight", "fc.bias"}));
  EXPECT_EQ(m.names, parameter_names(*m.module));
  EXPECT_EQ(m.input_shape, (std::vector<std::int64_t>{1, 3, 32, 32}));
  ASSERT_EQ(m.gradient_model.parameters.size(), 8u);
  EXPECT_EQ(m.gradient_model.last_weight, 6);
  EXPECT_EQ(m.gradient_model.parameters[0].sizes(), (std::vector<std::int64_t>{12, 3, 5, 5}));
  EXPECT_EQ(m.gradient_model.parameters[6].sizes(), (std::vector<std::int64_t>{10, 768}));
  for (const auto& p : m.gradient_model.parameters) {
    EXPECT_LE(p.max().item<float>(), 0.5f);
    EXPECT_GE(p.min().item<float>(), -0.5f);
  }
  EXPECT_EQ(m.gradient_model.forward(torch::zeros({2, 3, 32, 32})).sizes(),
            (std::vector<std::int64_t>{2, 10}));
}

TEST(AttackModelTest, LenetWeightsComeFromTheSeedOnly) {
  const AttackModel a = make_attack_model(lenet_options(7));
  torch::manual_seed(12345);  // the global generator's state does not matter
  const AttackModel b = make_attack_model(lenet_options(7));
  const AttackModel c = make_attack_model(lenet_options(8));
  EXPECT_TRUE(same_weights(a, b));
  EXPECT_FALSE(same_weights(a, c));
  // The weights of torch::manual_seed(seed) + LeNet(...), as `ppreid attack` built them before.
  torch::manual_seed(7);
  LeNet reference(3, 32, 32, 10);
  const auto ref = reference->parameters();
  ASSERT_EQ(ref.size(), a.gradient_model.parameters.size());
  for (std::size_t k = 0; k < ref.size(); ++k)
    EXPECT_TRUE(torch::equal(ref[k], a.gradient_model.parameters[k])) << a.names[k];
}

TEST(AttackModelTest, BuildingAModelLeavesTheGlobalGeneratorAlone) {
  torch::manual_seed(3);
  const torch::Tensor expected = torch::rand({4});
  torch::manual_seed(3);
  make_attack_model(lenet_options(9));
  make_attack_model(reid_options(9));
  EXPECT_TRUE(torch::equal(torch::rand({4}), expected));
}

TEST(AttackModelTest, ReidIsTheBackbonePoolingAndAClassifierInEvalMode) {
  const AttackModel m = make_attack_model(reid_options(1));
  EXPECT_EQ(m.input_shape, (std::vector<std::int64_t>{1, 3, 16, 12}));
  EXPECT_FALSE(m.module->is_training());  // BatchNorm on running statistics
  EXPECT_EQ(m.names, parameter_names(*m.module));
  ASSERT_EQ(m.names.size(), m.gradient_model.parameters.size());
  EXPECT_EQ(m.names.front(), "backbone.conv1.weight");
  EXPECT_EQ(m.names.back(), "classifier.weight");
  const int w = m.gradient_model.last_weight;
  ASSERT_GE(w, 0);
  EXPECT_EQ(m.names[w], "classifier.weight");
  EXPECT_EQ(m.gradient_model.parameters[w].sizes(), (std::vector<std::int64_t>{10, 128}));
  // The parameters are the module's live tensors (the site's white-box model), not copies.
  EXPECT_TRUE(
      m.gradient_model.parameters[w].is_same(m.module->named_parameters()["classifier.weight"]));
  EXPECT_EQ(m.gradient_model.forward(test_image(16, 12)).sizes(),
            (std::vector<std::int64_t>{1, 10}));
  // Attack mode: no strides, so the stem convolution keeps the input resolution.
  EXPECT_EQ(m.gradient_model.parameters[0].sizes(), (std::vector<std::int64_t>{16, 3, 7, 7}));

  const AttackModel same = make_attack_model(reid_options(1));
  const AttackModel other = make_attack_model(reid_options(2));
  EXPECT_TRUE(same_weights(m, same));
  EXPECT_FALSE(same_weights(m, other));
}

TEST(AttackModelTest, ReidLabelIsReadOffTheClassifierGradient) {
  const AttackModel m = make_attack_model(reid_options(4));
  const torch::Tensor image = test_image(16, 12);
  for (std::int64_t label : {0, 3, 6, 9}) {
    const auto shared = shared_gradient(m.gradient_model, image, label);
    ASSERT_EQ(shared.size(), m.names.size());
    EXPECT_EQ(infer_label(shared[m.gradient_model.last_weight]), label);
  }
}

TEST(AttackModelTest, ShortIdlgOnReidMovesTowardsTheTrainedOnImage) {
  // One thread, as measured (and as the CLI's default): the L-BFGS path is then reproducible.
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);
  struct Restore {
    int threads;
    ~Restore() { torch::set_num_threads(threads); }
  } restore{threads};
  const AttackModel m = make_attack_model(reid_options(0));
  const torch::Tensor image = test_image(16, 12);
  // Label 3 and dummy seed 1: the MSE falls from the first steps (0.225 -> 0.204 -> 0.126; with
  // other draws it may first rise while the distance falls, and the image is reached after 10-20
  // steps, ~4 s each here).
  const auto shared = shared_gradient(m.gradient_model, image, 3);

  InversionOptions options;
  options.iterations = 2;
  options.seed = 1;
  // invert_gradient's first dummy: N(0, 1) drawn right after manual_seed(options.seed).
  torch::manual_seed(options.seed);
  const torch::Tensor start = torch::randn(m.input_shape);
  const auto start_grads = shared_gradient(m.gradient_model, start, 3);
  double start_distance = 0;
  for (std::size_t k = 0; k < shared.size(); ++k)
    start_distance += (start_grads[k] - shared[k]).pow(2).sum().item<double>();

  const InversionResult r = invert_gradient(m.gradient_model, shared, m.input_shape, 10, options);
  EXPECT_EQ(r.label, 3);
  EXPECT_LT(r.distance, 0.5 * start_distance);
  const double start_mse = mse(start.clamp(0, 1), image);
  const double end_mse = mse(r.image.clamp(0, 1), image);
  EXPECT_LT(end_mse, 0.75 * start_mse) << "start " << start_mse << ", distance " << r.distance;
}

struct BadOptions {
  const char* what;
  AttackModelOptions options;
  const char* message;
};

TEST(AttackModelTest, BadOptionsAreErrorsNamingTheOptionAndTheAcceptedValues) {
  auto with = [](AttackModelOptions o, auto change) {
    change(o);
    return o;
  };
  const std::vector<BadOptions> cases = {
      {"unknown model", with(lenet_options(), [](auto& o) { o.model = "vgg"; }), "lenet or reid"},
      {"unknown arch", with(reid_options(), [](auto& o) { o.arch = "resnet99"; }), "resnet_tiny"},
      {"non-square lenet", with(lenet_options(), [](auto& o) { o.width = 16; }), "square"},
      {"height below 8", with(reid_options(), [](auto& o) { o.height = 7; }), "at least 8"},
      {"width below 8", with(lenet_options(), [](auto& o) { o.height = o.width = 4; }),
       "at least 8"},
      {"one class", with(reid_options(), [](auto& o) { o.classes = 1; }), "classes"},
  };
  for (const auto& c : cases) {
    const std::string message = testing::error_of([&] { make_attack_model(c.options); });
    EXPECT_THAT(message, HasSubstr(c.message)) << c.what;
    EXPECT_THAT(message, HasSubstr("attack model")) << c.what;
  }
}

}  // namespace
}  // namespace ppreid::attacks
