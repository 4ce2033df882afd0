#include "apps/ppreid/commands.h"

#include <signal.h>

#include <spdlog/spdlog.h>

#include <atomic>
#include <iostream>
#include <memory>
#include <string>

#include "aggregator/aggregator.h"
#include "aggregator/status_file.h"
#include "core/util/error.h"

namespace ppreid::agg {
namespace {

std::atomic<bool> g_stop{false};

extern "C" void on_stop_signal(int) { g_stop.store(true); }

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

struct RunArgs {
  std::string config;
  bool insecure = false;
};

void run_daemon(const RunArgs& a) {
  AggregatorConfig config = load_aggregator_config(a.config);
  if (config.security == proto::Security::kInsecure && !a.insecure)
    throw UsageError(a.config + ": security.mode is insecure; confirm it with --insecure on the "
                     "command line (nothing is encrypted or authenticated in that mode)");
  if (a.insecure) config.security = proto::Security::kInsecure;
  if (config.security == proto::Security::kInsecure)
    spdlog::warn("*** INSECURE MODE: no encryption, no authentication; any process that reaches "
                 "{} can join the federation and read the model. Local experiments only. ***",
                 config.listen);
  g_stop = false;
  install_stop_handlers();
  Aggregator aggregator(std::move(config));
  RunOutcome outcome = aggregator.run(g_stop);
  std::cout << (outcome == RunOutcome::kFinished ? "finished" : "stopped") << " after round "
            << aggregator.round() << "\n";
}

struct StatusArgs {
  std::string config;
  std::string state_dir;
  bool json = false;
};

void run_status(const StatusArgs& a) {
  std::filesystem::path dir;
  if (!a.state_dir.empty())
    dir = a.state_dir;
  else if (!a.config.empty())
    dir = load_aggregator_config(a.config).state_dir;
  else
    throw UsageError("aggregator status: give --config (the daemon's config) or --state-dir");
  auto status = read_status(dir);
  if (!status)
    throw Error("no aggregator has run in '" + dir.string() +
                "' (no status.json); start one with `ppreid aggregator --config ...`");
  if (a.json) {
    std::cout << status->dump(2) << "\n";
    return;
  }
  std::cout << format_status(*status);
  const std::string rounds = format_rounds(dir);
  if (!rounds.empty()) std::cout << "\ncompleted rounds (" << (dir / "metrics.jsonl").string()
                                  << "):\n" << rounds;
}

}  // namespace

void register_aggregator_commands(CLI::App& app) {
  auto run = std::make_shared<RunArgs>();
  CLI::App* agg = app.add_subcommand(
      "aggregator", "Run the federation's aggregator daemon (rounds, strategies, checkpoints)");
  agg->add_option("--config", run->config, "Aggregator config (see configs/aggregator.yaml)")
      ->check(CLI::ExistingFile);
  agg->add_flag("--insecure", run->insecure,
                "Run without CURVE encryption and authentication (local experiments only)");
  agg->require_subcommand(0, 1);

  auto st = std::make_shared<StatusArgs>();
  CLI::App* status = agg->add_subcommand("status", "Print the live state of an aggregator");
  status->add_option("--config", st->config, "The daemon's config (its state_dir is read)")
      ->check(CLI::ExistingFile);
  status->add_option("--state-dir", st->state_dir, "The daemon's state directory");
  status->add_flag("--json", st->json, "Print status.json as is (plus \"alive\")");
  status->callback([st] { run_status(*st); });

  agg->callback([agg, run] {
    if (!agg->get_subcommands().empty()) return;  // `aggregator status`
    if (run->config.empty())
      throw UsageError("aggregator: --config is required (start from configs/aggregator.yaml)");
    run_daemon(*run);
  });
}

}  // namespace ppreid::agg
