#include "core/reid/backbone.h"

#include <array>
#include <utility>

#include "core/reid/batch_norm.h"
#include "core/util/error.h"

namespace ppreid::reid {
namespace {

struct ArchSpec {
  bool bottleneck;
  std::array<int, 4> blocks;
  std::array<int, 4> widths;
};

ArchSpec arch_spec(const std::string& arch) {
  if (arch == "resnet50") return {true, {3, 4, 6, 3}, {64, 128, 256, 512}};
  if (arch == "resnet18") return {false, {2, 2, 2, 2}, {64, 128, 256, 512}};
  if (arch == "resnet_small") return {false, {2, 2, 2, 2}, {32, 64, 128, 256}};
  if (arch == "resnet_tiny") return {false, {1, 1, 1, 1}, {16, 32, 64, 128}};
  std::string known;
  for (const auto& a : backbone_archs()) known += (known.empty() ? "" : ", ") + a;
  throw Error("reid backbone: unknown arch '" + arch + "'; use one of " + known);
}

torch::nn::Conv2d make_conv(int in, int out, int kernel, int stride, int padding) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(false));
}

int out_size(int in, const torch::nn::Conv2dImpl& conv, int dim) {
  const auto& o = conv.options;
  const int k = static_cast<int>((*o.kernel_size())[dim]);
  const int s = static_cast<int>((*o.stride())[dim]);
  const int p = static_cast<int>((*c10::get<torch::ExpandingArray<2>>(o.padding()))[dim]);
  return (in + 2 * p - k) / s + 1;
}

// Multiply-adds of one convolution on an h x w input; h and w become the output size.
std::int64_t conv_cost(const torch::nn::Conv2dImpl& conv, int& h, int& w) {
  const auto& o = conv.options;
  h = out_size(h, conv, 0);
  w = out_size(w, conv, 1);
  const std::int64_t per_pixel = o.out_channels() * (o.in_channels() / o.groups()) *
                                 (*o.kernel_size())[0] * (*o.kernel_size())[1];
  return per_pixel * h * w;
}

// The projection shortcut when the block changes resolution or width; the Sequential gives the
// children torchvision's names downsample.0 (conv) and downsample.1 (BN).
torch::nn::Sequential make_downsample(int in, int out, int stride) {
  return torch::nn::Sequential(make_conv(in, out, 1, stride, 0), SyncableBatchNorm2d(out));
}

std::int64_t downsample_cost(const torch::nn::SequentialImpl& ds, int h, int w) {
  return conv_cost(*ds.ptr(0)->as<torch::nn::Conv2dImpl>(), h, w);
}

struct BasicBlockImpl : BackboneImpl::Block {
  static constexpr int kExpansion = 1;

  BasicBlockImpl(int in, int planes, int stride, Activation activation) : activation_(activation) {
    conv1_ = register_module("conv1", make_conv(in, planes, 3, stride, 1));
    bn1_ = register_module("bn1", SyncableBatchNorm2d(planes));
    conv2_ = register_module("conv2", make_conv(planes, planes, 3, 1, 1));
    bn2_ = register_module("bn2", SyncableBatchNorm2d(planes));
    if (stride != 1 || in != planes * kExpansion) {
      downsample_ = register_module("downsample", make_downsample(in, planes * kExpansion, stride));
    }
  }

  torch::Tensor forward(torch::Tensor x) override {
    torch::Tensor out = activate(bn1_(conv1_(x)), activation_);
    out = bn2_(conv2_(out));
    return activate(out + (downsample_ ? downsample_->forward(x) : x), activation_);
  }

  std::int64_t macs(int& h, int& w) const override {
    std::int64_t total = downsample_ ? downsample_cost(*downsample_, h, w) : 0;
    total += conv_cost(*conv1_, h, w);
    total += conv_cost(*conv2_, h, w);
    return total;
  }

  Activation activation_;
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  SyncableBatchNorm bn1_{nullptr}, bn2_{nullptr};
  torch::nn::Sequential downsample_{nullptr};
};

// torchvision's ResNet v1.5 bottleneck: the stride sits on the 3x3 convolution.
struct BottleneckImpl : BackboneImpl::Block {
  static constexpr int kExpansion = 4;

  BottleneckImpl(int in, int planes, int stride, Activation activation) : activation_(activation) {
    conv1_ = register_module("conv1", make_conv(in, planes, 1, 1, 0));
    bn1_ = register_module("bn1", SyncableBatchNorm2d(planes));
    conv2_ = register_module("conv2", make_conv(planes, planes, 3, stride, 1));
    bn2_ = register_module("bn2", SyncableBatchNorm2d(planes));
    conv3_ = register_module("conv3", make_conv(planes, planes * kExpansion, 1, 1, 0));
    bn3_ = register_module("bn3", SyncableBatchNorm2d(planes * kExpansion));
    if (stride != 1 || in != planes * kExpansion) {
      downsample_ = register_module("downsample", make_downsample(in, planes * kExpansion, stride));
    }
  }

  torch::Tensor forward(torch::Tensor x) override {
    torch::Tensor out = activate(bn1_(conv1_(x)), activation_);
    out = activate(bn2_(conv2_(out)), activation_);
    out = bn3_(conv3_(out));
    return activate(out + (downsample_ ? downsample_->forward(x) : x), activation_);
  }

  std::int64_t macs(int& h, int& w) const override {
    std::int64_t total = downsample_ ? downsample_cost(*downsample_, h, w) : 0;
    total += conv_cost(*conv1_, h, w);
    total += conv_cost(*conv2_, h, w);
    total += conv_cost(*conv3_, h, w);
    return total;
  }

  Activation activation_;
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr};
  SyncableBatchNorm bn1_{nullptr}, bn2_{nullptr}, bn3_{nullptr};
  torch::nn::Sequential downsample_{nullptr};
};

// The stem max-pool's output size (kernel 3, stride 2, padding 1).
int pool_out(int in) { return (in + 2 - 3) / 2 + 1; }

}  // namespace

Activation parse_activation(const std::string& name) {
  if (name == "relu") return Activation::kRelu;
  if (name == "sigmoid") return Activation::kSigmoid;
  throw Error("reid backbone: unknown activation '" + name + "'; use relu or sigmoid");
}

torch::Tensor activate(const torch::Tensor& x, Activation activation) {
  return activation == Activation::kRelu ? torch::relu(x) : torch::sigmoid(x);
}

const std::vector<std::string>& backbone_archs() {
  static const std::vector<std::string> archs = {"resnet50", "resnet18", "resnet_small",
                                                 "resnet_tiny"};
  return archs;
}

BackboneImpl::BackboneImpl(BackboneOptions options)
    : options_(std::move(options)), activation_(parse_activation(options_.activation)) {
  const ArchSpec spec = arch_spec(options_.arch);
  const int expansion = spec.bottleneck ? BottleneckImpl::kExpansion : BasicBlockImpl::kExpansion;
  const int stem_stride = options_.strides ? 2 : 1;
  conv1_ = register_module("conv1", make_conv(3, spec.widths[0], 7, stem_stride, 3));
  bn1_ = register_module("bn1", SyncableBatchNorm2d(spec.widths[0]));

  int in = spec.widths[0];
  for (int stage = 0; stage < 4; ++stage) {
    int stride = stage == 0 ? 1 : 2;
    if (stage == 3 && options_.last_stride_one) stride = 1;
    if (!options_.strides) stride = 1;
    torch::nn::ModuleList layer;
    for (int b = 0; b < spec.blocks[stage]; ++b) {
      const int s = b == 0 ? stride : 1;
      std::shared_ptr<Block> block;
      if (spec.bottleneck) {
        block = std::make_shared<BottleneckImpl>(in, spec.widths[stage], s, activation_);
      } else {
        block = std::make_shared<BasicBlockImpl>(in, spec.widths[stage], s, activation_);
      }
      in = spec.widths[stage] * expansion;
      layer->push_back(block);
      blocks_.push_back(block);
    }
    register_module("layer" + std::to_string(stage + 1), layer);
    layer_sizes_.push_back(spec.blocks[stage]);
  }
  feature_dim_ = in;

  // torchvision's initialisation: He-normal (fan_out, ReLU gain) convolutions, BN at identity.
  // Applied for sigmoid too, so that relu and sigmoid networks start from the same weights.
  torch::NoGradGuard no_grad;
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* conv = m->as<torch::nn::Conv2dImpl>()) {
      torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
    } else if (auto* bn = m->as<SyncableBatchNormImpl>()) {
      bn->weight.fill_(1.0);
      bn->bias.zero_();
    }
  }
}

torch::Tensor BackboneImpl::forward(torch::Tensor x) {
  x = activate(bn1_(conv1_(x)), activation_);
  if (options_.strides) x = torch::max_pool2d(x, /*kernel_size=*/3, /*stride=*/2, /*padding=*/1);
  for (auto& block : blocks_) x = block->forward(x);
  return x;
}

std::vector<torch::Tensor> BackboneImpl::forward_stages(torch::Tensor x) {
  x = activate(bn1_(conv1_(x)), activation_);
  if (options_.strides) x = torch::max_pool2d(x, /*kernel_size=*/3, /*stride=*/2, /*padding=*/1);
  std::vector<torch::Tensor> stages = {x};
  size_t next = 0;
  for (int n : layer_sizes_) {
    for (int b = 0; b < n; ++b) x = blocks_[next++]->forward(x);
    stages.push_back(x);
  }
  return stages;
}

std::int64_t BackboneImpl::conv_macs(int h, int w, int* map_h, int* map_w) const {
  std::int64_t total = conv_cost(*conv1_, h, w);
  if (options_.strides) {
    h = pool_out(h);
    w = pool_out(w);
  }
  for (const auto& block : blocks_) total += block->macs(h, w);
  if (map_h) *map_h = h;
  if (map_w) *map_w = w;
  return total;
}

BackboneInfo describe(const BackboneOptions& options, int h, int w) {
  if (h < 1 || w < 1) {
    throw Error("reid backbone describe: input size " + std::to_string(h) + "x" +
                std::to_string(w) + " is empty; pass a positive height and width");
  }
  Backbone backbone(options);
  BackboneInfo info;
  info.arch = options.arch;
  info.feature_dim = backbone->feature_dim();
  for (const auto& p : backbone->parameters()) info.parameters += p.numel();
  info.macs = backbone->conv_macs(h, w, &info.map_h, &info.map_w);
  if (info.map_h < 1 || info.map_w < 1) {
    throw Error("reid backbone describe: a " + std::to_string(h) + "x" + std::to_string(w) +
                " input is too small for " + options.arch + " with its strides; use a larger " +
                "input (at least 32x32 with strides)");
  }
  return info;
}

}  // namespace ppreid::reid
