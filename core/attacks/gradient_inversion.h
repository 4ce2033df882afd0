#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

namespace ppreid::attacks {

enum class InversionMethod {
  kIdlg,  // Zhao et al. 2020: the label read off the last layer's gradient, the image optimized
  kDlg,   // Zhu et al. 2019: image and (soft) label optimized together
};

// The model under attack, as the attacker knows it (white box: the same weights the site used).
struct GradientModel {
  std::function<torch::Tensor(const torch::Tensor&)> forward;  // [N,C,H,W] -> logits [N,K]
  std::vector<torch::Tensor> parameters;  // in the order of the shared gradient
  // Position in `parameters` of the last linear layer's weight [K,F] (iDLG reads the label off
  // its gradient); -1 means parameters.size() - 2 (weight then bias, as registered).
  int last_weight = -1;
};

// What a site shares in FedSGD mode for one image: the gradient of the cross-entropy of
// model(image) for `label` with respect to every parameter, detached.
std::vector<torch::Tensor> shared_gradient(const GradientModel& model, const torch::Tensor& image,
                                           std::int64_t label);

// iDLG's label inference. With cross-entropy, row i of the last layer's weight gradient is
// (softmax_i - [i == label]) * features; features after a Sigmoid/ReLU are >= 0, so only the
// true label's row sums negative. Returns the row with the smallest sum.
std::int64_t infer_label(const torch::Tensor& last_weight_gradient);

struct InversionOptions {
  InversionMethod method = InversionMethod::kIdlg;
  int iterations = 300;      // L-BFGS steps (each up to 20 function evaluations, as in PyTorch)
  double lr = 1.0;
  double tolerance = 1e-6;   // stop once the gradient distance is below this
  std::uint64_t seed = 0;    // the dummy image (and label) start as N(0, 1) draws from it
  // From some starting points L-BFGS stalls at once (saturated Sigmoids: the distance stops
  // moving far above the tolerance). A determined attacker then starts again from another dummy:
  // up to `restarts` more attempts, each with the full iteration budget; the best one is kept.
  int restarts = 2;
  std::vector<int> snapshots;  // steps after which to keep the reconstruction (for strips)
};

struct InversionResult {
  torch::Tensor image;   // [1,C,H,W], the reconstruction
  std::int64_t label = -1;
  bool label_from_gradient = false;  // iDLG: inferred before optimizing
  int iterations = 0;    // L-BFGS steps run in the attempt kept
  int restarts = 0;      // attempts abandoned because they stalled
  double distance = 0;   // final squared L2 distance between the gradients
  double seconds = 0;
  std::vector<std::pair<int, torch::Tensor>> snapshots;
};

// Reconstructs one training image from its shared gradient by gradient matching: minimizes
// sum_k ||dL(dummy)/dtheta_k - shared_k||^2 over the dummy image (and, for DLG, its label) with
// L-BFGS; needs second derivatives (double backward). `image_shape` is [1,C,H,W]. Throws
// ppreid::Error when the shared gradient does not match the model's parameters.
InversionResult invert_gradient(const GradientModel& model,
                                const std::vector<torch::Tensor>& shared,
                                std::vector<std::int64_t> image_shape, std::int64_t num_classes,
                                const InversionOptions& options);

// MSE of two images with values in [0, 1] (the attack's pixel space), and its PSNR in dB
// (+infinity for identical images).
double mse(const torch::Tensor& a, const torch::Tensor& b);
double psnr_from_mse(double mse);

}  // namespace ppreid::attacks
