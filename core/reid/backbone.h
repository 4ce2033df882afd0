#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/reid/backbone_options.h"
#include "core/reid/batch_norm.h"

namespace ppreid::reid {

// The nonlinearity used at every place torchvision's ResNet has a ReLU.
torch::Tensor activate(const torch::Tensor& x, Activation activation);

// A ResNet feature extractor (no pooling, no fc) with torchvision's module names, so that its
// named_parameters()/named_buffers() keys are torchvision's state_dict keys minus `fc.*`:
//   conv1, bn1, layer{1..4}.{i}.conv{1,2[,3]}, .bn{1,2[,3]}, .downsample.{0,1}.
//
//   arch          block       blocks     widths            feature_dim
//   resnet50      Bottleneck  3,4,6,3    64,128,256,512    2048 (expansion 4)
//   resnet18      BasicBlock  2,2,2,2    64,128,256,512    512
//   resnet_small  BasicBlock  2,2,2,2    32,64,128,256     256  (ResNet-18 at half width)
//   resnet_tiny   BasicBlock  1,1,1,1    16,32,64,128      128
//
// resnet_small keeps ResNet-18's depth rather than the single-block layout of resnet_tiny: it is
// the demo profile's model, where the extra depth buys accuracy at a cost (about a quarter of
// ResNet-18's multiply-adds) that CPUs still train in minutes.
// All archs use torchvision's stem (7x7/2 conv, BN, activation, 3x3/2 max-pool).
struct BackboneImpl : torch::nn::Module {
  explicit BackboneImpl(BackboneOptions options);

  // [N,3,H,W] -> feature map [N,feature_dim,h,w].
  torch::Tensor forward(torch::Tensor x);
  // The maps after the stem and after each of layer1..layer4 (5 tensors), for perceptual losses
  // that compare images at several depths.
  std::vector<torch::Tensor> forward_stages(torch::Tensor x);

  int feature_dim() const { return feature_dim_; }
  const BackboneOptions& options() const { return options_; }

  // Multiply-adds of all convolutions for one HxW image, walking the modules in forward order
  // with their own kernel/stride/padding; `map_h`/`map_w` (optional) receive the output map size.
  std::int64_t conv_macs(int h, int w, int* map_h = nullptr, int* map_w = nullptr) const;

  // One residual block; BasicBlock and Bottleneck implement it in backbone.cpp.
  struct Block : torch::nn::Module {
    virtual torch::Tensor forward(torch::Tensor x) = 0;
    // Multiply-adds for an h x w input; updates h and w to the output size.
    virtual std::int64_t macs(int& h, int& w) const = 0;
  };

 private:
  BackboneOptions options_;
  Activation activation_;
  int feature_dim_ = 0;
  torch::nn::Conv2d conv1_{nullptr};
  SyncableBatchNorm bn1_{nullptr};
  // layer1..layer4 are ModuleLists only so that the children are named "0", "1", ... as in
  // torchvision's nn.Sequential; blocks_ is the same blocks in forward order.
  std::vector<std::shared_ptr<Block>> blocks_;
  std::vector<int> layer_sizes_;  // blocks per layer
};
TORCH_MODULE(Backbone);

struct BackboneInfo {
  std::string arch;
  int feature_dim = 0;
  std::int64_t parameters = 0;  // trainable parameter elements (buffers excluded, no fc)
  // Forward multiply-adds per image of the convolutions (the "FLOPs" ReID papers quote; real
  // floating-point operations are about twice this). BN, activations and pooling are not counted.
  std::int64_t macs = 0;
  int map_h = 0, map_w = 0;  // final feature map size
};

// Builds the backbone once (on CPU) and counts; throws ppreid::Error for bad options or an input
// too small for the strides.
BackboneInfo describe(const BackboneOptions& options, int h, int w);

}  // namespace ppreid::reid
