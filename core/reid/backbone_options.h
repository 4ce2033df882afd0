#pragma once

// The backbone's options, torch-free so that configs and option parsing do not pull in LibTorch.
#include <string>
#include <vector>

namespace ppreid::reid {

struct BackboneOptions {
  // resnet50 | resnet18 | resnet_tiny | resnet_small (see BackboneImpl for the table).
  std::string arch = "resnet18";
  // BoT: the last stage keeps its input resolution (stride 1 instead of 2), which doubles the
  // final map in both directions and helps fine-grained ReID at no parameter cost.
  bool last_stride_one = true;
  // relu | sigmoid. Gradient-inversion attacks (DLG) differentiate the gradient itself, so they
  // want a twice-differentiable network: sigmoid everywhere together with strides = false.
  std::string activation = "relu";
  // false: every convolution has stride 1 and the stem max-pool is skipped (attack mode), so the
  // feature map keeps the input resolution.
  bool strides = true;
};

enum class Activation { kRelu, kSigmoid };

// Parses BackboneOptions::activation; throws ppreid::Error naming the accepted values.
Activation parse_activation(const std::string& name);

// The archs BackboneOptions::arch accepts, in the order of the README table.
const std::vector<std::string>& backbone_archs();

}  // namespace ppreid::reid
