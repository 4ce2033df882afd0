#include "core/attacks/attack_models.h"

#include <ATen/CPUGeneratorImpl.h>

#include <mutex>
#include <utility>

#include "core/attacks/lenet.h"
#include "core/reid/backbone.h"
#include "core/util/error.h"
#include "core/tensor/torch_threads.h"

namespace ppreid::attacks {
namespace {

// The ReID model a site trains, in attack mode: the backbone (sigmoid, no strides), global average
// pooling and a bias-free linear classifier (as in reid::ReidModel, without the BNNeck, whose
// batch statistics would couple the images of a batch). Parameters are backbone.* and
// classifier.weight, the names reid::ReidModel uses for the same tensors.
struct ReidAttackNetImpl : torch::nn::Module {
  ReidAttackNetImpl(const std::string& arch, int classes) {
    reid::BackboneOptions o;
    o.arch = arch;
    o.activation = "sigmoid";
    o.strides = false;
    backbone = register_module("backbone", reid::Backbone(o));
    // LibTorch's default Linear initialisation (uniform, bound 1/sqrt(features)) rather than
    // ReidModel's normal(std 0.001): with logits near zero every backbone gradient would be scaled
    // down by 1e-3 and the attack would stop at the distance tolerance before it has started.
    classifier = register_module(
        "classifier",
        torch::nn::Linear(torch::nn::LinearOptions(backbone->feature_dim(), classes).bias(false)));
  }

  torch::Tensor forward(const torch::Tensor& x) {
    // Features after a sigmoid are > 0, which is what iDLG's label inference relies on.
    return classifier->forward(backbone->forward(x).mean({2, 3}));
  }

  reid::Backbone backbone{nullptr};
  torch::nn::Linear classifier{nullptr};
};
TORCH_MODULE(ReidAttackNet);

// Runs `build` with torch's default CPU generator seeded to `seed`, then puts the generator's
// previous state back, so that the weights depend on `seed` only and the caller's random stream
// continues as if nothing had been drawn. Holds tensor::torch_generator_mutex() throughout, like
// every other seeded initialisation (LibTorch's module initialisers take no generator argument,
// and the generator's own mutex cannot be held while they lock it themselves).
template <typename F>
auto with_default_generator_seeded(std::uint64_t seed, F&& build) {
  std::lock_guard seeded(tensor::torch_generator_mutex());
  at::Generator gen = at::detail::getDefaultCPUGenerator();
  torch::Tensor saved;
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    saved = gen.get_state();
    gen.set_current_seed(seed);
  }
  struct Restore {
    at::Generator& gen;
    const torch::Tensor& state;
    ~Restore() {
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(state);
    }
  } restore{gen, saved};
  return build();
}

// Sets every BatchNorm's running statistics to those of a batch of uniform-noise images (drawn
// from the default generator; the caller seeds it), then leaves the module in train() mode.
//
// Why: freshly built, BatchNorm is the identity (weight 1, bias 0, running mean 0, variance 1), so
// in eval() mode the backbone is a deep sigmoid network without normalisation. Its output then
// barely depends on the input (the logits of two unrelated 16x12 images differ by ~5e-5), the
// shared gradient says almost nothing about the image, and L-BFGS stops on its first step at its
// gradient tolerance. A trained site's statistics normalise its activations; statistics of noise
// images stand in for them here and make the attack work (see attack_models_test.cpp).
void calibrate_batch_norm(ReidAttackNetImpl& net, int height, int width) {
  constexpr int kBatch = 8;
  torch::NoGradGuard no_grad;
  std::vector<std::pair<reid::SyncableBatchNormImpl*, double>> norms;
  for (const auto& m : net.modules(/*include_self=*/false))
    if (auto* bn = m->as<reid::SyncableBatchNormImpl>()) {
      norms.emplace_back(bn, bn->momentum());
      bn->set_momentum(1.0);  // running statistics := this batch's
    }
  if (norms.empty()) throw Error("calibrate_batch_norm: the attack network has no BatchNorm");
  net.train();
  const torch::Tensor images = torch::rand({kBatch, 3, height, width});
  net.forward(images);
  for (auto& [bn, momentum] : norms) bn->set_momentum(momentum);
}

void check_options(const AttackModelOptions& o) {
  if (o.model != "lenet" && o.model != "reid")
    throw Error("attack model: unknown model '" + o.model + "'; use lenet or reid");
  if (o.model == "reid") {
    bool known = false;
    std::string archs;
    for (const auto& a : reid::backbone_archs()) {
      known = known || a == o.arch;
      archs += (archs.empty() ? "" : ", ") + a;
    }
    if (!known)
      throw Error("attack model: unknown arch '" + o.arch + "' for the reid model; use one of " +
                  archs);
  }
  if (o.height < 8 || o.width < 8)
    throw Error("attack model: input height and width must be at least 8 (got height " +
                std::to_string(o.height) + ", width " + std::to_string(o.width) + ")");
  if (o.model == "lenet" && o.height != o.width)
    throw Error("attack model: lenet needs a square input (height == width), got height " +
                std::to_string(o.height) + ", width " + std::to_string(o.width) +
                "; use the same size for both, or the reid model");
  if (o.classes < 2)
    throw Error("attack model: classes must be at least 2 (got " + std::to_string(o.classes) +
                ")");
}

// Fills names, parameters and last_weight from the module's named parameters (state-dict names,
// registration order: the order the shared gradient comes in).
void describe_parameters(AttackModel& m, const std::string& last_weight_name) {
  for (const auto& item : m.module->named_parameters()) {
    if (item.key() == last_weight_name)
      m.gradient_model.last_weight = static_cast<int>(m.names.size());
    m.names.push_back(item.key());
    m.gradient_model.parameters.push_back(item.value());
  }
  if (m.gradient_model.last_weight < 0)
    throw Error("attack model: internal error, no parameter named " + last_weight_name);
}

}  // namespace

AttackModel make_attack_model(const AttackModelOptions& options) {
  check_options(options);
  AttackModel m;
  m.input_shape = {1, 3, options.height, options.width};
  if (options.model == "lenet") {
    // The LeNet constructor draws its default initialisation and then reset_uniform() from the
    // default generator: seeded here, the weights are those of torch::manual_seed(seed) followed
    // by LeNet(...), as the reference implementations do it.
    LeNet net = with_default_generator_seeded(options.seed, [&] {
      return LeNet(3, options.height, options.width, options.classes);
    });
    m.module = net.ptr();
    m.gradient_model.forward = [net](const torch::Tensor& x) mutable { return net->forward(x); };
    describe_parameters(m, "fc.weight");
  } else {
    ReidAttackNet net = with_default_generator_seeded(options.seed, [&] {
      ReidAttackNet n(options.arch, options.classes);
      calibrate_batch_norm(*n, options.height, options.width);
      return n;
    });
    // eval(): BatchNorm normalises with its running statistics instead of the batch's. A site
    // sharing one image's gradient would otherwise normalise over a batch of one image, and the
    // attacker, who computes the gradient of the dummy with the very same module (white box),
    // must see the same function the site did; with running statistics that function is a
    // fixed per-channel affine map, smooth in the input and independent of the batch.
    net->eval();
    m.module = net.ptr();
    m.gradient_model.forward = [net](const torch::Tensor& x) mutable { return net->forward(x); };
    describe_parameters(m, "classifier.weight");
  }
  return m;
}

}  // namespace ppreid::attacks
