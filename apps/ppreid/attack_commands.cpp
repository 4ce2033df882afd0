#include "apps/ppreid/commands.h"

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <iostream>
#include <memory>
#include <string>

#include "core/attacks/attack_images.h"
#include "core/attacks/attack_models.h"
#include "core/attacks/gradient_inversion.h"
#include "core/quality/image_quality.h"
#include "core/reid/backbone.h"
#include "core/util/atomic_file.h"
#include "core/util/error.h"
#include "core/util/image.h"
#include "core/tensor/torch_threads.h"

namespace ppreid::attacks {
namespace {

struct AttackArgs {
  InversionMethod method = InversionMethod::kIdlg;
  std::string model = "lenet";
  std::string arch = "resnet_tiny";
  std::string image, deid_image, strip;
  int size = 32;
  int height = 0, width = 0;  // 0: the model's default
  int classes = 10;
  int label = 0;
  int iterations = 300;
  std::uint64_t seed = 0;
  int threads = 1;
  bool json = false;
  // Which of the size flags were given (CLI11 fills these), for the combination checks.
  CLI::Option* size_flag = nullptr;
  CLI::Option* height_flag = nullptr;
  CLI::Option* width_flag = nullptr;
  CLI::Option* arch_flag = nullptr;
  CLI::Option* iterations_flag = nullptr;
};

// The reid model's default input: small enough that an attack runs in tens of seconds on one
// thread (the backbone keeps full resolution, every L-BFGS evaluation is a double backward through
// it), and at least 11 wide for SSIM's 11x11 window. Not 2:1 like a pedestrian crop: the cost
// of an L-BFGS step hardly falls below ~3 s on one core at any size (the ~40 batch-1
// convolutions and their double backward dominate), and larger inputs need more steps (32x16:
// 25 steps, 150 s, where 16x12 needs 9, 44 s).
constexpr int kReidHeight = 16, kReidWidth = 12;
// The reid model's default L-BFGS steps: an attack that succeeds there does so within 10-25 steps
// (3-4 s each on one core), one that stalls in a local minimum would take ~15 min for 300.
constexpr int kReidIterations = 50;

bool given(const CLI::Option* flag) { return flag != nullptr && flag->count() > 0; }

// Checks the model and size flags together and resolves the input size; UsageError names the
// flags.
AttackModelOptions model_options(const AttackArgs& a) {
  AttackModelOptions o;
  o.model = a.model;
  o.classes = a.classes;
  o.seed = a.seed;
  if (a.model == "lenet") {
    if (given(a.arch_flag))
      throw UsageError("--arch applies to --model reid only (lenet has one architecture)");
    if (given(a.size_flag) && (given(a.height_flag) || given(a.width_flag)))
      throw UsageError("give either --size or --height/--width, not both");
    if (given(a.height_flag) != given(a.width_flag))
      throw UsageError("--model lenet needs a square input: give --size, or both --height and "
                       "--width with the same value");
    if (given(a.height_flag) && a.height != a.width)
      throw UsageError("--model lenet needs a square input, but --height " +
                       std::to_string(a.height) + " and --width " + std::to_string(a.width) +
                       " differ; use --size, or --model reid for other shapes");
    o.height = o.width = given(a.height_flag) ? a.height : a.size;
  } else if (a.model == "reid") {
    if (given(a.size_flag))
      throw UsageError("--size is lenet's square input; --model reid takes --height and --width "
                       "(default " + std::to_string(kReidHeight) + "x" +
                       std::to_string(kReidWidth) + ")");
    o.arch = a.arch;
    o.height = given(a.height_flag) ? a.height : kReidHeight;
    o.width = given(a.width_flag) ? a.width : kReidWidth;
  } else {
    throw UsageError("--model " + a.model + ": unknown; use lenet (the reference LeNet) or reid "
                     "(the ReID backbone in attack mode)");
  }
  return o;
}

void add_metrics(nlohmann::json& out, const std::string& suffix, const torch::Tensor& reference,
                 const torch::Tensor& reconstruction) {
  const double m = mse(reconstruction.clamp(0, 1), reference);
  out["mse_" + suffix] = m;
  const double p = psnr_from_mse(m);
  out["psnr_" + suffix] = std::isfinite(p) ? nlohmann::json(p) : nlohmann::json("inf");
  out["ssim_" + suffix] = quality::ssim(to_bgr8(reference), to_bgr8(reconstruction));
  // Success rates at the usual MSE thresholds (a run reports 0/1; a simulation averages them).
  for (auto [name, threshold] : {std::pair{"1e-2", 1e-2}, {"1e-3", 1e-3}, {"1e-4", 1e-4}})
    out["success_" + suffix][name] = m < threshold;
}


void run_attack(const AttackArgs& a) {
  const AttackModelOptions model_opts = model_options(a);
  if (a.label >= a.classes)
    throw UsageError("--label " + std::to_string(a.label) + " must be below --classes " +
                     std::to_string(a.classes));
  AttackModel attack_model;
  try {
    attack_model = make_attack_model(model_opts);
  } catch (const UsageError&) {
    throw;
  } catch (const Error& e) {
    throw UsageError(e.what());  // only the options can be wrong here, and they are the flags
  }
  tensor::configure_torch_threads(a.threads);
  const int h = model_opts.height, w = model_opts.width;
  const torch::Tensor raw = load_attack_image(a.image, h, w);
  const torch::Tensor trained_on =
      a.deid_image.empty() ? raw : load_attack_image(a.deid_image, h, w);

  // White box: the attacker holds the model the site computed the gradient with.
  const GradientModel& model = attack_model.gradient_model;
  const std::vector<torch::Tensor> shared = shared_gradient(model, trained_on, a.label);

  InversionOptions options;
  options.method = a.method;
  options.iterations =
      a.model == "reid" && !given(a.iterations_flag) ? kReidIterations : a.iterations;
  options.seed = a.seed + 1;
  options.snapshots = {1, 10, 50};
  InversionResult r =
      invert_gradient(model, shared, attack_model.input_shape, a.classes, options);

  nlohmann::json out = {{"method", a.method == InversionMethod::kIdlg ? "idlg" : "dlg"},
                        {"model", a.model},
                        {"height", h},
                        {"width", w},
                        {"label", a.label},
                        {"label_inferred", r.label},
                        {"label_correct", r.label == a.label},
                        {"iterations", r.iterations},
                        {"restarts", r.restarts},
                        {"gradient_distance", r.distance},
                        {"seconds", r.seconds}};
  if (a.model == "lenet") out["image_size"] = h;
  if (a.model == "reid") out["arch"] = a.arch;
  add_metrics(out, "raw", raw, r.image);
  if (!a.deid_image.empty()) add_metrics(out, "deid", trained_on, r.image);
  if (!a.strip.empty()) {
    std::vector<torch::Tensor> tiles = {raw};
    if (!a.deid_image.empty()) tiles.push_back(trained_on);
    for (const auto& [step, image] : r.snapshots) tiles.push_back(image);
    tiles.push_back(r.image);
    write_strip(a.strip, tiles);
    out["strip"] = a.strip;
  }
  if (a.json) {
    std::cout << out.dump(2) << "\n";
    return;
  }
  std::cout << out["method"].get<std::string>() << " on " << a.model
            << (a.model == "reid" ? " " + a.arch : "") << " (" << h << "x" << w << "): label "
            << (r.label == a.label ? "recovered" : "missed") << " (" << r.label << "), "
            << r.iterations << " L-BFGS steps in " << r.seconds << " s\n"
            << "against the raw image: MSE " << out["mse_raw"] << ", PSNR " << out["psnr_raw"]
            << " dB, SSIM " << out["ssim_raw"] << "\n";
  if (!a.deid_image.empty())
    std::cout << "against the de-identified image trained on: MSE " << out["mse_deid"]
              << ", PSNR " << out["psnr_deid"] << " dB, SSIM " << out["ssim_deid"] << "\n";
}

}  // namespace

void register_attack_commands(CLI::App& app) {
  CLI::App* attack = app.add_subcommand(
      "attack", "Gradient-inversion attacks on what a site would share (iDLG, DLG)");
  attack->require_subcommand(1);
  for (auto [name, method, help] :
       {std::tuple{"idlg", InversionMethod::kIdlg,
                   "iDLG (Zhao et al. 2020): label from the gradient, image by L-BFGS"},
        std::tuple{"dlg", InversionMethod::kDlg,
                   "DLG (Zhu et al. 2019): image and label by L-BFGS"}}) {
    auto a = std::make_shared<AttackArgs>();
    a->method = method;
    CLI::App* cmd = attack->add_subcommand(name, help);
    cmd->add_option("--image", a->image, "The raw image")->required()->check(CLI::ExistingFile);
    cmd->add_option("--deid-image", a->deid_image,
                    "Its de-identified version: the gradient is of this image, the "
                    "reconstruction is measured against both")
        ->check(CLI::ExistingFile);
    cmd->add_option("--model", a->model,
                    "lenet (the reference implementations' LeNet) or reid (the ReID backbone "
                    "with sigmoid and no strides + pooling + linear classifier)");
    std::string archs;
    for (const auto& arch : reid::backbone_archs()) archs += (archs.empty() ? "" : ", ") + arch;
    a->arch_flag = cmd->add_option("--arch", a->arch, "reid backbone: " + archs)
                       ->check(CLI::IsMember(reid::backbone_archs()));
    a->size_flag = cmd->add_option("--size", a->size,
                                   "lenet: square input size the image is resized to (default 32)")
                       ->check(CLI::Range(8, 256));
    a->height_flag =
        cmd->add_option("--height", a->height,
                        "reid: input height (default " + std::to_string(kReidHeight) +
                            "); lenet: same as --width")
            ->check(CLI::Range(8, 256));
    a->width_flag =
        cmd->add_option("--width", a->width,
                        "reid: input width (default " + std::to_string(kReidWidth) +
                            ", at least 11 for SSIM's window); lenet: same as --height")
            ->check(CLI::Range(8, 256));
    cmd->add_option("--classes", a->classes, "Classes of the model")->check(CLI::Range(2, 100000));
    cmd->add_option("--label", a->label, "The image's label in the shared gradient")
        ->check(CLI::Range(0, 99999));
    a->iterations_flag =
        cmd->add_option("--iterations", a->iterations,
                        "L-BFGS steps at most (stops at distance 1e-6); default 300 for lenet, " +
                            std::to_string(kReidIterations) + " for reid")
            ->check(CLI::Range(1, 100000));
    cmd->add_option("--seed", a->seed, "Seed of the model weights and the dummy image");
    cmd->add_option("--threads", a->threads, "LibTorch threads (0 = all cores)")
        ->check(CLI::Range(0, 1024));
    cmd->add_option("--strip", a->strip,
                    "PNG: raw | de-identified | steps 1, 10, 50 | final reconstruction");
    cmd->add_flag("--json", a->json, "Print JSON");
    cmd->callback([a] { run_attack(*a); });
  }
}

}  // namespace ppreid::attacks
