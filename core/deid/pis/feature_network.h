#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "core/deid/pis/pis_config.h"

namespace ppreid::deid::pis {

// V in PIS's perceptual reconstruction term: a FIXED network whose activations at several
// depths are compared between x and x'. ImageNet weights cannot be downloaded here, so V is
// pluggable:
//   reid    the stem + 4 stages of a ReID backbone trained by `ppreid train`, ideally on the
//           site's own raw images (it knows what distinguishes people: the default when given);
//   vgg19   torchvision's VGG19 (relu1_2, relu2_2, relu3_2, relu4_2, relu5_2, as VUNet) from a
//           state_dict the user brings;
//   random  a fixed random 3-layer conv net (32/64/128 channels, ReLU, strides 1/2/2) whose
//           weights come from a seed: random features still compare local structure at several
//           scales (Ulyanov et al.'s deep image prior observation) and need nothing.
// All take RGB in [-1, 1]; their parameters never train.
class FeatureNetwork {
 public:
  virtual ~FeatureNetwork() = default;
  virtual std::string name() const = 0;
  virtual std::vector<torch::Tensor> features(const torch::Tensor& rgb) = 0;
  virtual torch::nn::Module& module() = 0;
};

std::unique_ptr<FeatureNetwork> make_feature_network(const FeatureLossOptions& options);

// VGG19's convolutional part with torchvision's parameter names (features.0.weight, ...).
struct Vgg19FeaturesImpl : torch::nn::Module {
  Vgg19FeaturesImpl();
  // Activations after relu1_2, relu2_2, relu3_2, relu4_2, relu5_2 of ImageNet-normalized input.
  std::vector<torch::Tensor> forward(const torch::Tensor& normalized);
  // Loads features.* from a torchvision vgg19 state_dict; classifier.* is ignored. Throws
  // ppreid::Error naming a missing key or a shape mismatch.
  void load_torchvision(const std::filesystem::path& file);

 private:
  torch::nn::Sequential features_{nullptr};
};
TORCH_MODULE(Vgg19Features);

// alpha_rec * sum_i mean|V_i(x) - V_i(x')| + pixel_l1 * mean|x - x'| (per-element means so the
// weights do not depend on the image size). `network` may be null when alpha_rec is 0.
torch::Tensor reconstruction_loss(FeatureNetwork* network, const torch::Tensor& x,
                                  const torch::Tensor& x_rec, const FeatureLossOptions& options);

}  // namespace ppreid::deid::pis
