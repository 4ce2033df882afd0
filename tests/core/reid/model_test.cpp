#include "core/reid/model.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "core/reid/backbone.h"
#include "core/reid/losses.h"
#include "core/util/error.h"

namespace ppreid::reid {
namespace {

ModelOptions options_for(const std::string& arch, int num_classes) {
  ModelOptions o;
  o.backbone.arch = arch;
  o.num_classes = num_classes;
  return o;
}

std::set<std::string> names_of(const NamedTensors& state) {
  std::set<std::string> names;
  for (const auto& [name, value] : state) names.insert(name);
  return names;
}

std::map<std::string, std::vector<int64_t>> named_shapes(const torch::nn::Module& m) {
  std::map<std::string, std::vector<int64_t>> out;
  for (const auto& p : m.named_parameters()) out[p.key()] = p.value().sizes().vec();
  for (const auto& b : m.named_buffers()) out[b.key()] = b.value().sizes().vec();
  return out;
}

int64_t parameter_count(const torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

std::string load_error(ReidModel& model, const NamedTensors& state, bool head) {
  try {
    head ? model->load_head_state(state) : model->load_shared_state(state);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(BackboneShapes, FeatureMapAndOutputsPerArchAndSize) {
  torch::NoGradGuard no_grad;
  const std::vector<std::pair<std::string, int64_t>> archs = {
      {"resnet_tiny", 128}, {"resnet_small", 256}, {"resnet18", 512}};
  for (const auto& [arch, dim] : archs) {
    ReidModel model(options_for(arch, 5));
    EXPECT_EQ(model->feature_dim(), dim) << arch;
    for (auto [h, w] : {std::pair{64, 32}, std::pair{128, 64}}) {
      torch::Tensor images = torch::randn({2, 3, h, w});
      // Stem /4, layer2 /2, layer3 /2, layer4 stride 1: total /16.
      torch::Tensor map = model->backbone()->forward(images);
      EXPECT_EQ(map.sizes().vec(), (std::vector<int64_t>{2, dim, h / 16, w / 16})) << arch;
      ReidOutput out = model->forward(images);
      EXPECT_EQ(out.global_feat.sizes().vec(), (std::vector<int64_t>{2, dim})) << arch;
      EXPECT_EQ(out.bn_feat.sizes().vec(), (std::vector<int64_t>{2, dim})) << arch;
      EXPECT_EQ(out.logits.sizes().vec(), (std::vector<int64_t>{2, 5})) << arch;
      BackboneInfo info = describe(model->backbone()->options(), h, w);
      EXPECT_EQ(info.map_h, h / 16);
      EXPECT_EQ(info.map_w, w / 16);
      EXPECT_EQ(info.feature_dim, dim);
    }
  }
}

TEST(BackboneShapes, LastStrideOneDoublesTheFinalMap) {
  torch::NoGradGuard no_grad;
  BackboneOptions o;
  o.arch = "resnet_tiny";
  Backbone keep(o);
  o.last_stride_one = false;
  Backbone halve(o);
  torch::Tensor images = torch::randn({2, 3, 128, 64});
  EXPECT_EQ(keep->forward(images).sizes().vec(), (std::vector<int64_t>{2, 128, 8, 4}));
  EXPECT_EQ(halve->forward(images).sizes().vec(), (std::vector<int64_t>{2, 128, 4, 2}));
  // Same modules and names either way, so ImageNet weights load into both.
  EXPECT_EQ(named_shapes(*keep), named_shapes(*halve));
}

TEST(BackboneShapes, NoStridesKeepsFullResolution) {
  torch::NoGradGuard no_grad;
  BackboneOptions o;
  o.arch = "resnet_tiny";
  o.strides = false;
  Backbone b(o);
  EXPECT_EQ(b->forward(torch::randn({1, 3, 32, 16})).sizes().vec(),
            (std::vector<int64_t>{1, 128, 32, 16}));
  EXPECT_EQ(describe(o, 32, 16).map_h, 32);
}

TEST(BackboneActivation, SigmoidVariantHasNoReluAndIsTwiceDifferentiable) {
  BackboneOptions o;
  o.arch = "resnet_tiny";
  o.strides = false;
  torch::manual_seed(0);
  Backbone relu(o);
  o.activation = "sigmoid";
  torch::manual_seed(0);
  Backbone sigmoid(o);
  torch::Tensor x = torch::randn({2, 3, 16, 8});
  {
    torch::NoGradGuard no_grad;
    // The last op is the activation: ReLU clips to exact zeros, sigmoid stays inside (0, 1).
    torch::Tensor r = relu->forward(x);
    EXPECT_GT((r == 0).sum().item<int64_t>(), 0);
    torch::Tensor s = sigmoid->forward(x);
    EXPECT_GT(s.min().item<double>(), 0.0);
    EXPECT_LT(s.max().item<double>(), 1.0);
  }
  // DLG matches parameter gradients, i.e. differentiates a gradient: the second derivative
  // must reach the input.
  torch::Tensor input = x.clone().set_requires_grad(true);
  torch::Tensor out = sigmoid->forward(input).pow(2).sum();
  auto grads = torch::autograd::grad({out}, {sigmoid->named_parameters()["conv1.weight"]},
                                     /*grad_outputs=*/{}, /*retain_graph=*/true,
                                     /*create_graph=*/true);
  grads[0].pow(2).sum().backward();
  ASSERT_TRUE(input.grad().defined());
  EXPECT_TRUE(torch::isfinite(input.grad()).all().item<bool>());
  EXPECT_GT(input.grad().abs().sum().item<double>(), 0.0);
}

TEST(BackboneOptionsCheck, RejectsUnknownArchAndActivation) {
  BackboneOptions o;
  o.arch = "resnet34";
  try {
    Backbone b(o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("resnet_tiny"), std::string::npos) << e.what();
  }
  o.arch = "resnet_tiny";
  o.activation = "tanh";
  EXPECT_THROW(Backbone{o}, Error);
}

TEST(BackboneTorchvision, Resnet18NamesAndParameterCount) {
  ReidModel model(options_for("resnet18", 0));
  auto shapes = named_shapes(*model);
  // Keys of torchvision's resnet18 state_dict (minus fc.*) under "backbone.".
  EXPECT_EQ(shapes.at("backbone.conv1.weight"), (std::vector<int64_t>{64, 3, 7, 7}));
  EXPECT_EQ(shapes.at("backbone.layer4.1.bn2.running_var"), (std::vector<int64_t>{512}));
  EXPECT_EQ(shapes.at("backbone.layer2.0.downsample.0.weight"),
            (std::vector<int64_t>{128, 64, 1, 1}));
  EXPECT_EQ(shapes.at("backbone.layer3.0.downsample.1.num_batches_tracked"),
            (std::vector<int64_t>{}));
  EXPECT_EQ(shapes.count("backbone.layer1.0.downsample.0.weight"), 0u);
  // torchvision resnet18: 11,689,512 parameters, minus fc (512 * 1000 + 1000) = 11,176,512;
  // its state_dict has 122 entries (62 parameters + 20 BNs x 3 buffers), 120 without fc.
  EXPECT_EQ(parameter_count(*model->backbone()), 11176512);
  EXPECT_EQ(named_shapes(*model->backbone()).size(), 120u);
  // The whole model adds the neck: weight, bias and three buffers.
  EXPECT_EQ(shapes.size(), 125u);
  EXPECT_EQ(describe(model->backbone()->options(), 64, 32).parameters, 11176512);
}

TEST(BackboneTorchvision, Resnet50NamesParameterCountAndOneForward) {
  ReidModel model(options_for("resnet50", 0));
  auto shapes = named_shapes(*model);
  EXPECT_EQ(shapes.at("backbone.layer1.0.downsample.0.weight"),
            (std::vector<int64_t>{256, 64, 1, 1}));
  EXPECT_EQ(shapes.at("backbone.layer1.0.downsample.1.running_mean"), (std::vector<int64_t>{256}));
  EXPECT_EQ(shapes.at("backbone.layer4.2.conv3.weight"), (std::vector<int64_t>{2048, 512, 1, 1}));
  EXPECT_EQ(shapes.at("backbone.layer3.5.bn3.bias"), (std::vector<int64_t>{1024}));
  EXPECT_EQ(shapes.at("backbone.layer4.0.conv2.weight"), (std::vector<int64_t>{512, 512, 3, 3}));
  // torchvision resnet50: 25,557,032 parameters, minus fc (2048 * 1000 + 1000) = 23,508,032;
  // state_dict 320 entries (161 parameters + 53 BNs x 3 buffers), 318 without fc.
  EXPECT_EQ(parameter_count(*model->backbone()), 23508032);
  EXPECT_EQ(named_shapes(*model->backbone()).size(), 318u);
  EXPECT_EQ(model->feature_dim(), 2048);

  model->eval();
  torch::NoGradGuard no_grad;
  ReidOutput out = model->forward(torch::randn({1, 3, 64, 32}));
  EXPECT_EQ(out.global_feat.sizes().vec(), (std::vector<int64_t>{1, 2048}));
  EXPECT_FALSE(out.logits.defined());
  EXPECT_EQ(model->backbone()->forward(torch::randn({1, 3, 64, 32})).sizes().vec(),
            (std::vector<int64_t>{1, 2048, 4, 2}));
}

TEST(BackboneDescribe, MultiplyAddsMatchTorchvisionFigures) {
  // torchvision lists 1.81 GFLOPS (resnet18) and 4.09 (resnet50) at 224x224 with the classic
  // last stride 2; those include fc (0.512 M and 2.048 M multiply-adds). Convolutions alone,
  // layer by layer (resnet18): stem 112*112*64*3*49 = 118,013,952; layer1 4 * 56*56*64*64*9 =
  // 462,422,016; layers 2-4 each 411,041,792 (first conv, 3 full convs, 1x1 projection).
  BackboneOptions o;
  o.arch = "resnet18";
  o.last_stride_one = false;
  BackboneInfo r18 = describe(o, 224, 224);
  EXPECT_EQ(r18.macs, 118013952LL + 462422016LL + 3 * 411041792LL);
  EXPECT_EQ(r18.map_h, 7);
  o.arch = "resnet50";
  BackboneInfo r50 = describe(o, 224, 224);
  EXPECT_EQ(r50.macs + 2048000, 4089184256LL);
  EXPECT_EQ(r50.parameters, 23508032);
  // Last stride one: layer4 runs at 4x the pixels, so it costs more.
  o.last_stride_one = true;
  EXPECT_GT(describe(o, 224, 224).macs, r50.macs);
  EXPECT_THROW(describe(o, 0, 10), Error);
}

TEST(ReidModelEmbed, L2NormalisedAndDeterministicInEval) {
  torch::manual_seed(1);
  ReidModel model(options_for("resnet_tiny", 4));
  // A few training forwards move the BN running statistics away from their initial values.
  for (int i = 0; i < 3; ++i) model->forward(torch::randn({4, 3, 64, 32}));
  model->eval();
  torch::NoGradGuard no_grad;
  torch::Tensor images = torch::randn({3, 3, 64, 32});
  torch::Tensor a = model->embed(images);
  torch::Tensor b = model->embed(images);
  EXPECT_EQ(a.sizes().vec(), (std::vector<int64_t>{3, 128}));
  EXPECT_TRUE(torch::allclose(a.norm(2, 1), torch::ones({3}), 1e-5, 1e-5));
  EXPECT_TRUE(torch::equal(a, b));
  // The same image alone or in a batch gives the same feature: eval BN uses running stats.
  EXPECT_TRUE(torch::allclose(model->embed(images.slice(0, 0, 1)), a.slice(0, 0, 1), 1e-4, 1e-5));
  // embed is the normalised bn_feat of forward.
  ReidOutput out = model->forward(images);
  EXPECT_TRUE(
      torch::allclose(a, out.bn_feat / out.bn_feat.norm(2, 1, /*keepdim=*/true), 1e-5, 1e-6));
}

TEST(ReidModelNeck, BiasFrozenThroughAnOptimizerStep) {
  torch::manual_seed(2);
  ReidModel model(options_for("resnet_tiny", 4));
  ASSERT_TRUE(model->neck());
  EXPECT_FALSE(model->neck()->bias.requires_grad());
  EXPECT_TRUE(model->neck()->weight.requires_grad());
  CenterLoss center(4, model->feature_dim());
  torch::optim::Adam adam(model->parameters(), torch::optim::AdamOptions(1e-2).weight_decay(5e-4));
  torch::Tensor labels = torch::tensor({0, 0, 1, 1, 2, 2, 3, 3}, torch::kLong);
  torch::Tensor neck_weight_before = model->neck()->weight.detach().clone();
  for (int step = 0; step < 2; ++step) {
    adam.zero_grad();
    ReidOutput out = model->forward(torch::randn({8, 3, 64, 32}));
    LossParts parts = combined_loss(out, labels, LossWeights{}, &center, 0.1, 0.3);
    parts.total.backward();
    EXPECT_FALSE(model->neck()->bias.grad().defined());
    EXPECT_TRUE(model->classifier()->weight.grad().defined());
    adam.step();
  }
  EXPECT_EQ(model->neck()->bias.abs().sum().item<double>(), 0.0);
  EXPECT_FALSE(torch::equal(model->neck()->weight, neck_weight_before));
  EXPECT_EQ(model->named_parameters().find("classifier.bias"), nullptr);
}

TEST(ReidModelNeck, WithoutNeckBnFeatIsGlobalFeat) {
  ModelOptions o = options_for("resnet_tiny", 3);
  o.neck = false;
  ReidModel model(o);
  EXPECT_FALSE(model->neck());
  ReidOutput out = model->forward(torch::randn({2, 3, 64, 32}));
  EXPECT_TRUE(torch::equal(out.bn_feat, out.global_feat));
  for (const auto& [name, value] : model->shared_state()) {
    EXPECT_EQ(name.rfind("backbone.", 0), 0u) << name;
  }
}

TEST(ReidModelState, SharedAndHeadRoundTripBetweenModels) {
  torch::manual_seed(3);
  ReidModel a(options_for("resnet_tiny", 6));
  a->forward(torch::randn({4, 3, 64, 32}));  // non-trivial BN running statistics
  torch::manual_seed(4);
  ReidModel b(options_for("resnet_tiny", 6));

  NamedTensors shared = a->shared_state();
  NamedTensors head = a->head_state();
  ASSERT_EQ(head.size(), 1u);
  EXPECT_EQ(head[0].first, "classifier.weight");
  std::set<std::string> names = names_of(shared);
  EXPECT_TRUE(names.count("backbone.layer4.0.downsample.1.running_var"));
  EXPECT_TRUE(names.count("neck.running_mean"));
  EXPECT_TRUE(names.count("neck.bias"));
  EXPECT_FALSE(names.count("classifier.weight"));
  b->load_shared_state(shared);
  b->load_head_state(head);
  NamedTensors b_shared = b->shared_state();
  ASSERT_EQ(b_shared.size(), shared.size());
  for (size_t i = 0; i < shared.size(); ++i) {
    EXPECT_EQ(b_shared[i].first, shared[i].first);
    EXPECT_TRUE(torch::equal(b_shared[i].second, shared[i].second)) << shared[i].first;
  }
  a->eval();
  b->eval();
  torch::NoGradGuard no_grad;
  torch::Tensor images = torch::randn({2, 3, 64, 32});
  EXPECT_TRUE(torch::equal(a->forward(images).logits, b->forward(images).logits));

  // Snapshots, not views: changing the model afterwards leaves them as they were.
  torch::Tensor first = shared[0].second.clone();
  a->named_parameters()[shared[0].first].add_(1.0);
  EXPECT_TRUE(torch::equal(first, shared[0].second));
}

TEST(ReidModelState, MismatchedStateThrowsListingNamesAndLoadsNothing) {
  ReidModel ten(options_for("resnet_tiny", 10));
  ReidModel twelve(options_for("resnet_tiny", 12));
  torch::Tensor before = twelve->classifier()->weight.detach().clone();
  std::string msg = load_error(twelve, ten->head_state(), /*head=*/true);
  EXPECT_NE(msg.find("shape mismatch: classifier.weight [10,128] vs [12,128]"), std::string::npos)
      << msg;
  EXPECT_TRUE(torch::equal(twelve->classifier()->weight, before));

  NamedTensors shared = ten->shared_state();
  NamedTensors partial;
  for (const auto& item : shared) {
    if (item.first != "neck.running_mean") partial.push_back(item);
  }
  partial.emplace_back("neck.extra", torch::zeros({3}));
  torch::Tensor conv_before = twelve->backbone()->named_parameters()["conv1.weight"].clone();
  msg = load_error(twelve, partial, /*head=*/false);
  EXPECT_NE(msg.find("missing: neck.running_mean"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unexpected: neck.extra"), std::string::npos) << msg;
  EXPECT_TRUE(torch::equal(twelve->backbone()->named_parameters()["conv1.weight"], conv_before));

  // The head must not be accepted as shared state, nor a different arch.
  msg = load_error(twelve, ten->head_state(), /*head=*/false);
  EXPECT_NE(msg.find("unexpected: classifier.weight"), std::string::npos) << msg;
  ReidModel small(options_for("resnet_small", 12));
  msg = load_error(twelve, small->shared_state(), /*head=*/false);
  EXPECT_NE(msg.find("shape mismatch: backbone.conv1.weight [32,3,7,7] vs [16,3,7,7]"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("more)"), std::string::npos) << msg;  // long lists are cut short
}

TEST(ReidModelState, ResetClassifierForNewIdentities) {
  ReidModel model(options_for("resnet_tiny", 0));
  EXPECT_TRUE(model->head_state().empty());
  EXPECT_FALSE(model->forward(torch::randn({2, 3, 64, 32})).logits.defined());
  model->reset_classifier(7);
  EXPECT_EQ(model->num_classes(), 7);
  ASSERT_EQ(model->head_state().size(), 1u);
  EXPECT_EQ(model->head_state()[0].second.sizes().vec(), (std::vector<int64_t>{7, 128}));
  // BoT's classifier init: normal with std 0.001.
  EXPECT_LT(model->classifier()->weight.abs().max().item<double>(), 0.01);
  EXPECT_EQ(model->forward(torch::randn({2, 3, 64, 32})).logits.size(1), 7);
  model->reset_classifier(3);
  EXPECT_EQ(model->named_parameters()["classifier.weight"].size(0), 3);
  model->reset_classifier(0);
  EXPECT_TRUE(model->head_state().empty());
  EXPECT_THROW(model->reset_classifier(-1), Error);
}

TEST(ReidModelInput, RejectsNonImageTensors) {
  ReidModel model(options_for("resnet_tiny", 2));
  EXPECT_THROW(model->forward(torch::randn({2, 1, 64, 32})), Error);
  EXPECT_THROW(model->forward(torch::randn({3, 64, 32})), Error);
}

}  // namespace
}  // namespace ppreid::reid
