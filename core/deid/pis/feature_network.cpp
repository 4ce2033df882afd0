#include "core/deid/pis/feature_network.h"

#include <cmath>

#include "core/reid/checkpoint.h"
#include "core/reid/torch_pickle.h"
#include "core/util/error.h"
#include "core/util/rng.h"

namespace ppreid::deid::pis {
namespace {

// [-1,1] RGB -> ImageNet normalization, which both VGG and ppreid's ReID models expect.
torch::Tensor imagenet_normalized(const torch::Tensor& rgb) {
  auto opts = rgb.options();
  torch::Tensor mean = torch::tensor({0.485f, 0.456f, 0.406f}, opts).view({1, 3, 1, 1});
  torch::Tensor std = torch::tensor({0.229f, 0.224f, 0.225f}, opts).view({1, 3, 1, 1});
  return ((rgb + 1.0) * 0.5 - mean) / std;
}

void freeze(torch::nn::Module& m) {
  for (auto& p : m.parameters()) p.set_requires_grad(false);
  m.eval();
}

struct RandomConvFeaturesImpl : torch::nn::Module {
  explicit RandomConvFeaturesImpl(std::uint64_t seed) {
    const int widths[] = {32, 64, 128};
    const int strides[] = {1, 2, 2};
    int in = 3;
    util::Rng rng(seed);
    std::normal_distribution<float> normal(0.f, 1.f);
    torch::NoGradGuard no_grad;
    for (int i = 0; i < 3; ++i) {
      auto conv = torch::nn::Conv2d(
          torch::nn::Conv2dOptions(in, widths[i], 3).stride(strides[i]).padding(1).bias(false));
      // He-normal from ppreid's own seeded generator: the same weights on every LibTorch build.
      const float std = std::sqrt(2.f / static_cast<float>(in * 9));
      auto w = conv->weight.data_ptr<float>();
      for (std::int64_t k = 0; k < conv->weight.numel(); ++k) w[k] = normal(rng) * std;
      convs.push_back(register_module("conv" + std::to_string(i), conv));
      in = widths[i];
    }
  }
  std::vector<torch::Tensor> forward(torch::Tensor x) {
    std::vector<torch::Tensor> out;
    for (auto& c : convs) {
      x = torch::relu(c(x));
      out.push_back(x);
    }
    return out;
  }
  std::vector<torch::nn::Conv2d> convs;
};
TORCH_MODULE(RandomConvFeatures);

class RandomFeatures final : public FeatureNetwork {
 public:
  explicit RandomFeatures(std::uint64_t seed) : net_(seed) { freeze(*net_); }
  std::string name() const override { return "random"; }
  std::vector<torch::Tensor> features(const torch::Tensor& rgb) override { return net_(rgb); }
  torch::nn::Module& module() override { return *net_; }

 private:
  RandomConvFeatures net_;
};

class VggFeatures final : public FeatureNetwork {
 public:
  explicit VggFeatures(const std::filesystem::path& file) {
    net_->load_torchvision(file);
    freeze(*net_);
  }
  std::string name() const override { return "vgg19"; }
  std::vector<torch::Tensor> features(const torch::Tensor& rgb) override {
    return net_(imagenet_normalized(rgb));
  }
  torch::nn::Module& module() override { return *net_; }

 private:
  Vgg19Features net_;
};

class ReidFeatures final : public FeatureNetwork {
 public:
  explicit ReidFeatures(const std::filesystem::path& dir) : model_(reid::load_checkpoint_model(dir)) {
    freeze(*model_);
  }
  std::string name() const override { return "reid"; }
  std::vector<torch::Tensor> features(const torch::Tensor& rgb) override {
    return model_->backbone()->forward_stages(imagenet_normalized(rgb));
  }
  torch::nn::Module& module() override { return *model_; }

 private:
  reid::ReidModel model_;
};

}  // namespace

Vgg19FeaturesImpl::Vgg19FeaturesImpl() {
  // torchvision's configuration "E"; -1 is a 2x2 max-pool.
  const int cfg[] = {64, 64, -1, 128, 128, -1, 256, 256, 256, 256, -1,
                     512, 512, 512, 512, -1, 512, 512, 512, 512};
  torch::nn::Sequential seq;
  int in = 3;
  for (int c : cfg) {
    if (c < 0) {
      seq->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2).stride(2)));
    } else {
      seq->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(in, c, 3).padding(1)));
      seq->push_back(torch::nn::ReLU());
      in = c;
    }
  }
  features_ = register_module("features", seq);
}

std::vector<torch::Tensor> Vgg19FeaturesImpl::forward(const torch::Tensor& normalized) {
  // Sequential indices of relu1_2, relu2_2, relu3_2, relu4_2, relu5_2.
  const std::size_t taps[] = {3, 8, 13, 22, 31};
  std::vector<torch::Tensor> out;
  torch::Tensor x = normalized;
  std::size_t i = 0, next_tap = 0;
  for (auto& layer : *features_) {
    if (next_tap == 5) break;
    x = layer.forward(x);
    if (i++ == taps[next_tap]) out.push_back(x), ++next_tap;
  }
  return out;
}

void Vgg19FeaturesImpl::load_torchvision(const std::filesystem::path& file) {
  reid::NamedTensors state = reid::read_torch_state_dict(file);
  std::map<std::string, torch::Tensor> by_name(state.begin(), state.end());
  torch::NoGradGuard no_grad;
  for (auto& item : named_parameters()) {
    const std::string& name = item.key();
    torch::Tensor& param = item.value();
    auto it = by_name.find(name);
    if (it == by_name.end())
      throw Error(file.string() + ": no '" + name +
                  "'; feature_loss.vgg19_weights must be torchvision's vgg19 state_dict "
                  "(vgg19-dcbb9e9d.pth)");
    if (it->second.sizes() != param.sizes())
      throw Error(file.string() + ": '" + name + "' has shape " +
                  c10::str(it->second.sizes()) + ", VGG19 needs " + c10::str(param.sizes()));
    param.copy_(it->second.to(torch::kFloat32));
  }
}

std::unique_ptr<FeatureNetwork> make_feature_network(const FeatureLossOptions& options) {
  if (options.network == "reid") {
    if (options.reid_model.empty())
      throw Error("feature_loss.network is reid but no ReID model was given "
                  "(feature_loss.reid_model or --feature-model)");
    return std::make_unique<ReidFeatures>(options.reid_model);
  }
  if (options.network == "vgg19") return std::make_unique<VggFeatures>(options.vgg19_weights);
  if (options.network == "random") return std::make_unique<RandomFeatures>(options.random_seed);
  throw Error("feature_loss.network: unknown network '" + options.network +
              "'; use reid, vgg19 or random");
}

torch::Tensor reconstruction_loss(FeatureNetwork* network, const torch::Tensor& x,
                                  const torch::Tensor& x_rec, const FeatureLossOptions& options) {
  torch::Tensor loss = torch::zeros({}, x.options());
  if (options.pixel_l1 > 0) loss = loss + options.pixel_l1 * (x - x_rec).abs().mean();
  if (options.alpha_rec > 0) {
    if (!network) throw Error("reconstruction_loss: alpha_rec > 0 needs a feature network");
    std::vector<torch::Tensor> a, b;
    {
      // The target's features need no graph.
      torch::NoGradGuard no_grad;
      a = network->features(x);
    }
    b = network->features(x_rec);
    torch::Tensor perceptual = torch::zeros({}, x.options());
    for (size_t i = 0; i < a.size(); ++i) perceptual = perceptual + (a[i] - b[i]).abs().mean();
    loss = loss + options.alpha_rec * perceptual;
  }
  return loss;
}

}  // namespace ppreid::deid::pis
