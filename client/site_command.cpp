#include "client/site_command.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>
#include <iostream>
#include <memory>
#include <string>

#include "client/site.h"
#include "client/site_config.h"
#include "core/util/error.h"

namespace ppreid::client {
namespace {

// Set from the signal handler: a lock-free atomic store is async-signal-safe. The site looks at
// it between steps, so the current step is finished (or the round abandoned) before Bye.
std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free);

extern "C" void on_signal(int) { g_stop.store(true); }

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
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);

  Site site(std::move(config));
  const SiteExit exit = site.run(g_stop);
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
