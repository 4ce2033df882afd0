#include "apps/ppreid/commands.h"

#include <iostream>

#include "core/data/dataset.h"
#include "core/deid/pis/pis_trainer.h"
#include "core/util/error.h"

namespace ppreid::deid::pis {
namespace {

struct TrainArgs {
  std::string data, config = "tiny", out, feature_model;
  bool resume = false, json = false;
  int max_steps = 0;
};

void run(const TrainArgs& a) {
  // A bare profile name means the PIS profile of that name (configs/pis/NAME.yaml).
  const bool bare = a.config.find('/') == std::string::npos && a.config.find(".yaml") == std::string::npos;
  PisConfig config = load_pis_config(find_profile(bare ? "pis/" + a.config : a.config));
  data::Dataset dataset = data::load_dataset(a.data);
  PisTrainRunOptions options;
  options.out = a.out;
  options.resume = a.resume;
  options.max_steps = a.max_steps;
  if (!a.feature_model.empty()) options.feature_model = a.feature_model;
  PisTrainSummary s = train_pis(config, dataset, options);
  if (a.json) {
    std::cout << s.to_json().dump(2) << "\n";
    return;
  }
  std::cout << "trained PIS for " << s.steps_run << " steps (" << s.last_step << " in total) in "
            << s.seconds << " s on " << s.images << " images";
  if (!s.finished) {
    std::cout << "\n  stopped early (--max-steps); continue with --resume\n";
    return;
  }
  if (s.skipped) std::cout << " (" << s.skipped << " without usable pose skipped)";
  std::cout << "\n  reconstruction SSIM " << s.metrics["reconstruction_ssim"].get<double>()
            << ", shifted-to-original SSIM " << s.metrics["shift_ssim_to_original"].get<double>()
            << "\n  model: " << (std::filesystem::path(a.out) / "checkpoint").string() << "\n";
}

}  // namespace

void register_pis_train_command(CLI::App& pis) {
  auto a = std::make_shared<TrainArgs>();
  CLI::App* cmd = pis.add_subcommand("train", "Train the PIS conditional VAE on a dataset's train split");
  cmd->add_option("--data", a->data, "Dataset with keypoints.csv (Market-1501 layout)")->required();
  cmd->add_option("--config", a->config, "PIS config file, or a profile name: tiny, small, paper (configs/pis/)")
      ->capture_default_str();
  cmd->add_option("--out", a->out, "Run directory: checkpoint/, grids/, metrics.jsonl")->required();
  cmd->add_option("--feature-model", a->feature_model,
                  "ReID checkpoint (ppreid train) whose backbone is the perceptual network V");
  cmd->add_flag("--resume", a->resume, "Continue the run in --out from its last checkpoint");
  cmd->add_option("--max-steps", a->max_steps,
                  "Stop after this many steps (checkpointed); --resume continues")
      ->check(CLI::Range(0, 100000000));
  cmd->add_flag("--json", a->json, "Print the summary as JSON");
  cmd->callback([a] { run(*a); });
}

}  // namespace ppreid::deid::pis
