#pragma once

// The models a gradient-inversion attacker replays a shared update against. Both are smooth
// (Sigmoid) so the gradient-matching loss is twice differentiable:
//  - lenet: the reference implementations' LeNet (lenet.h), square inputs;
//  - reid:  the ReID backbone (reid::Backbone, activation sigmoid, strides off) + global average
//           pooling + one linear classifier, i.e. what a site trains, in attack mode.

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/attacks/gradient_inversion.h"

namespace ppreid::attacks {

struct AttackModelOptions {
  std::string model = "lenet";      // lenet | reid
  std::string arch = "resnet_tiny"; // reid: reid::backbone_archs() name
  int height = 32, width = 32;      // input size (lenet: must be square)
  int classes = 10;
  std::uint64_t seed = 0;           // initial weights (lenet: uniform(-0.5, 0.5) as in DLG/iDLG)
};

// An attack model and the GradientModel view of it (parameters in shared-gradient order, with
// their names as the site would put them on the wire).
struct AttackModel {
  std::shared_ptr<torch::nn::Module> module;
  GradientModel gradient_model;
  std::vector<std::string> names;  // names[i] belongs to gradient_model.parameters[i]
  std::vector<std::int64_t> input_shape;  // [1, 3, H, W]
};

// Throws ppreid::Error (naming the option and the accepted values) for an unknown model or arch,
// a non-square lenet input, sizes below 8 or classes below 2.
AttackModel make_attack_model(const AttackModelOptions& options);

}  // namespace ppreid::attacks
