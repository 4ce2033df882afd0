#include "core/attacks/gradient_inversion.h"

#include <chrono>
#include <cmath>
#include <limits>

#include "core/reid/model.h"
#include "core/util/error.h"

namespace ppreid::attacks {
namespace {

torch::Tensor gradient_distance(const std::vector<torch::Tensor>& dummy,
                                const std::vector<torch::Tensor>& shared) {
  torch::Tensor d = torch::zeros({}, shared[0].options());
  for (std::size_t k = 0; k < shared.size(); ++k) d = d + (dummy[k] - shared[k]).pow(2).sum();
  return d;
}

}  // namespace

std::vector<torch::Tensor> shared_gradient(const GradientModel& model, const torch::Tensor& image,
                                           std::int64_t label) {
  torch::Tensor logits = model.forward(image);
  torch::Tensor loss = torch::nn::functional::cross_entropy(
      logits, torch::full({image.size(0)}, label, torch::kLong));
  std::vector<torch::Tensor> grads = torch::autograd::grad({loss}, model.parameters);
  for (auto& g : grads) g = g.detach();
  return grads;
}

std::int64_t infer_label(const torch::Tensor& last_weight_gradient) {
  if (last_weight_gradient.dim() != 2)
    throw Error("iDLG: the last layer's weight gradient must be [classes, features], got " +
                reid::shape_string(last_weight_gradient));
  return last_weight_gradient.sum(1).argmin().item<std::int64_t>();
}

InversionResult invert_gradient(const GradientModel& model,
                                const std::vector<torch::Tensor>& shared,
                                std::vector<std::int64_t> image_shape, std::int64_t num_classes,
                                const InversionOptions& options) {
  if (shared.size() != model.parameters.size())
    throw Error("gradient inversion: the shared gradient has " + std::to_string(shared.size()) +
                " tensors, the model " + std::to_string(model.parameters.size()) + " parameters");
  for (std::size_t k = 0; k < shared.size(); ++k)
    if (!shared[k].sizes().equals(model.parameters[k].sizes()))
      throw Error("gradient inversion: shared gradient " + std::to_string(k) + " is " +
                  reid::shape_string(shared[k]) + ", the parameter is " +
                  reid::shape_string(model.parameters[k]));
  if (options.iterations < 1) throw Error("gradient inversion: iterations must be >= 1");
  const auto started = std::chrono::steady_clock::now();

  // One attempt from the dummy drawn with `seed`; stalled = the distance stopped moving (by
  // less than 1e-9 relative for 5 steps) while still above the tolerance.
  auto attempt = [&](std::uint64_t seed, bool& stalled) {
    torch::manual_seed(seed);
    InversionResult result;
    torch::Tensor dummy = torch::randn(image_shape).requires_grad_(true);
    torch::Tensor dummy_label = torch::randn({1, num_classes}).requires_grad_(true);
    std::vector<torch::Tensor> optimized = {dummy};
    if (options.method == InversionMethod::kIdlg) {
      const int w =
          model.last_weight < 0 ? static_cast<int>(shared.size()) - 2 : model.last_weight;
      if (w < 0 || w >= static_cast<int>(shared.size()))
        throw Error("iDLG: the model has no last linear layer at parameter " + std::to_string(w));
      result.label = infer_label(shared[w]);
      result.label_from_gradient = true;
    } else {
      optimized.push_back(dummy_label);
    }
    const torch::Tensor label_tensor = torch::full({1}, std::max<std::int64_t>(result.label, 0),
                                                   torch::kLong);
    auto loss_of = [&](const torch::Tensor& logits) {
      if (options.method == InversionMethod::kIdlg)
        return torch::nn::functional::cross_entropy(logits, label_tensor);
      // DLG's soft label: cross-entropy against softmax(dummy_label).
      return -(torch::softmax(dummy_label, 1) * torch::log_softmax(logits, 1)).sum(1).mean();
    };

    torch::optim::LBFGS optimizer(optimized, torch::optim::LBFGSOptions(options.lr));
    auto closure = [&]() -> torch::Tensor {
      optimizer.zero_grad();
      std::vector<torch::Tensor> grads =
          torch::autograd::grad({loss_of(model.forward(dummy))}, model.parameters, {},
                                /*retain_graph=*/true, /*create_graph=*/true);
      torch::Tensor distance = gradient_distance(grads, shared);
      distance.backward();
      return distance;
    };

    double distance = std::numeric_limits<double>::infinity();
    std::size_t next_snapshot = 0;
    std::vector<int> snapshots = options.snapshots;
    std::sort(snapshots.begin(), snapshots.end());
    int still = 0;
    stalled = false;
    for (int step = 1; step <= options.iterations; ++step) {
      optimizer.step(closure);
      result.iterations = step;
      // The distance after the step (L-BFGS's return value is the one before it).
      const double previous = distance;
      distance = gradient_distance(
                     torch::autograd::grad({loss_of(model.forward(dummy))}, model.parameters),
                     shared)
                     .item<double>();
      while (next_snapshot < snapshots.size() && snapshots[next_snapshot] <= step)
        result.snapshots.emplace_back(snapshots[next_snapshot++], dummy.detach().clone());
      if (!std::isfinite(distance) || distance < options.tolerance) break;
      still = std::abs(previous - distance) <= 1e-9 * std::max(1.0, distance) ? still + 1 : 0;
      if (still >= 5) {
        stalled = true;
        break;
      }
    }
    if (options.method == InversionMethod::kDlg)
      result.label = dummy_label.detach().argmax(1).item<std::int64_t>();
    result.image = dummy.detach().clone();
    result.distance = distance;
    return result;
  };

  InversionResult best;
  int abandoned = 0;
  for (int a = 0; a <= std::max(0, options.restarts); ++a) {
    bool stalled = false;
    // Attempt 0 uses the seed itself, so a run without stalls is what it always was.
    InversionResult r = attempt(options.seed + static_cast<std::uint64_t>(a) * 1000003, stalled);
    const bool better = a == 0 || (std::isfinite(r.distance) && !(r.distance >= best.distance));
    if (better) best = std::move(r);
    if (!stalled) break;
    ++abandoned;
  }
  best.restarts = abandoned;
  best.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return best;
}

double mse(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).pow(2).mean().item<double>();
}

double psnr_from_mse(double m) {
  return m <= 0 ? std::numeric_limits<double>::infinity() : 10.0 * std::log10(1.0 / m);
}

}  // namespace ppreid::attacks
