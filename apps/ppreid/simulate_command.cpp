#include "apps/ppreid/commands.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>

#include "core/util/error.h"
#include "core/util/stop_on_signal.h"
#include "simulations/simulation.h"

namespace ppreid::sim {
namespace fs = std::filesystem;
namespace {

struct SimulateArgs {
  std::string config, out;
  bool resume = false;
  bool json = false;
};

// The binary that runs `site` children (runner: processes): this very executable.
fs::path self_binary() {
  std::error_code ec;
  fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : p;
}

void run(const SimulateArgs& a) {
  util::StopOnSignal signals;  // first: every thread started later inherits the blocked mask
  fs::path file = a.config;
  // A bare name means configs/sim/NAME.yaml.
  if (!fs::exists(file) && !file.has_extension() && !file.has_parent_path() &&
      fs::exists(fs::path("configs") / "sim" / (a.config + ".yaml")))
    file = fs::path("configs") / "sim" / (a.config + ".yaml");
  const SimConfig config = load_sim_config(file);
  SimulationOptions options;
  options.site_binary = self_binary();
  options.stop = &signals.flag();
  options.resume = a.resume;
  const SimulationResult r = run_simulation(config, a.out, options);
  if (a.json) {
    std::cout << r.summary.dump(2) << "\n";
    return;
  }
  std::cout << r.summary_table << "\n";
  std::printf("wall time %.1f s; report: %s\n", r.seconds, fs::absolute(r.report).c_str());
}

}  // namespace

void register_simulate_command(CLI::App& app) {
  auto args = std::make_shared<SimulateArgs>();
  CLI::App* cmd = app.add_subcommand(
      "simulate", "Run a whole federation (or an experiment of several) on this machine: real "
                  "aggregator and sites over CURVE loopback, attacks, tables, plots, report.html");
  cmd->add_option("--config", args->config,
                  "Simulation config (configs/sim/tiny.yaml, or tiny for configs/sim/tiny.yaml)")
      ->required();
  cmd->add_option("--out", args->out, "Output directory (new or empty, or --resume)")->required();
  cmd->add_flag("--resume", args->resume,
                "Finish an interrupted simulation in --out (completed runs are kept)");
  cmd->add_flag("--json", args->json, "Print summary.json instead of the table");
  cmd->callback([args] { run(*args); });
}

}  // namespace ppreid::sim
