#include "core/attacks/lenet.h"

#include "core/util/error.h"

namespace ppreid::attacks {

LeNetImpl::LeNetImpl(int channels, int height, int width, int num_classes) {
  if (channels < 1 || height < 4 || width < 4 || num_classes < 2)
    throw Error("LeNet: needs >= 1 channel, an input of at least 4x4 and >= 2 classes (got " +
                std::to_string(channels) + "x" + std::to_string(height) + "x" +
                std::to_string(width) + ", " + std::to_string(num_classes) + " classes)");
  auto conv = [](int in, int stride) {
    return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, 12, 5).stride(stride).padding(2));
  };
  conv1 = register_module("conv1", conv(channels, 2));
  conv2 = register_module("conv2", conv(12, 2));
  conv3 = register_module("conv3", conv(12, 1));
  // Output size of a 5x5 convolution with padding 2: floor((n - 1) / stride) + 1.
  const int h = ((height - 1) / 2 + 1 - 1) / 2 + 1;
  const int w = ((width - 1) / 2 + 1 - 1) / 2 + 1;
  fc = register_module("fc", torch::nn::Linear(12 * h * w, num_classes));
  reset_uniform();
}

torch::Tensor LeNetImpl::forward(torch::Tensor x) {
  x = torch::sigmoid(conv1->forward(x));
  x = torch::sigmoid(conv2->forward(x));
  x = torch::sigmoid(conv3->forward(x));
  return fc->forward(x.flatten(1));
}

void LeNetImpl::reset_uniform() {
  torch::NoGradGuard no_grad;
  for (auto& p : parameters()) p.uniform_(-0.5, 0.5);
}

}  // namespace ppreid::attacks
