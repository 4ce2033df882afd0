#include "client/site_command.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "client/site.h"
#include "client/site_config.h"
#include "core/util/error.h"
#include "core/util/stop_on_signal.h"

namespace ppreid::client {
namespace {

struct SiteArgs {
  std::string config;
  bool insecure = false;
};

void run(const SiteArgs& args) {
  SiteConfig config = load_site_config(args.config);
  if (args.insecure) {
    config.security = proto::Security::kInsecure;
    std::cerr << "WARNING: --insecure: this site talks to the aggregator WITHOUT encryption or "
                 "authentication; anyone on the network can read its model updates and "
                 "impersonate the aggregator. Use it for local experiments only.\n";
  } else if (config.security == proto::Security::kInsecure) {
    std::cerr << "WARNING: aggregator.security is insecure in '" << config.file.string()
              << "': no encryption or authentication. Local experiments only.\n";
  }
  util::StopOnSignal signals;
  Site site(std::move(config));
  const SiteExit exit = site.run(signals.flag());
  const SiteStats& s = site.stats();
  spdlog::info("site {}: {} after {} trained round(s), {} update(s) sent, {} evaluation(s)",
               site.config().site_id,
               exit == SiteExit::kFinished ? "federation finished" : "stopped", s.tasks_trained,
               s.updates_sent, s.evaluations);
}

}  // namespace

void register_site_command(CLI::App& app) {
  auto args = std::make_shared<SiteArgs>();
  CLI::App* cmd = app.add_subcommand(
      "site", "Run a federation site: de-identify its data, then train rounds for the aggregator");
  cmd->add_option("--config", args->config, "Site config (see configs/site.yaml)")->required();
  cmd->add_flag("--insecure", args->insecure,
                "Plain TCP without CURVE (local experiments only; overrides the config)");
  cmd->callback([args] { run(*args); });
}

}  // namespace ppreid::client
