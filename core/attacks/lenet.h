#pragma once

#include <torch/torch.h>

namespace ppreid::attacks {

// The LeNet variant both gradient-inversion reference implementations attack (DLG, Zhu et al.
// 2019; iDLG, Zhao et al. 2020): three 5x5 convolutions with 12 channels and strides 2, 2, 1
// (padding 2), Sigmoid after each (smooth, so the gradient-matching loss is twice
// differentiable), and one linear layer. Weights and biases start uniform in [-0.5, 0.5].
// A 32x32 input gives 12 * 8 * 8 = 768 features.
struct LeNetImpl : torch::nn::Module {
  LeNetImpl(int channels, int height, int width, int num_classes);
  torch::Tensor forward(torch::Tensor x);
  // Draws every parameter uniform in [-0.5, 0.5] from torch's global generator.
  void reset_uniform();

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(LeNet);

}  // namespace ppreid::attacks
