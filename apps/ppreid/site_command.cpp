#include "apps/ppreid/commands.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "client/site.h"
#include "client/site_config.h"
#include "core/deid/method_factory.h"
#include "core/reid/train_config.h"
#include "core/util/error.h"
#include "core/util/stop_on_signal.h"

namespace ppreid::client {
namespace {

struct SiteArgs {
  std::string config;
  std::optional<std::uint64_t> seed;
  bool insecure = false;
  dist::LaunchFlags launch;
};

void run(const SiteArgs& args) {
  dist::LaunchOptions launch = dist::resolve_launch(args.launch);
  dist::resolve_backend(launch.backend, /*model_on_cuda=*/false);
  SiteConfig config = load_site_config(args.config);
  if (args.seed) {
    if (!config.deid_reproducible)
      throw UsageError("--seed makes the de-identification reproducible by anyone who knows the "
                       "seed, so the site's store would not be private; it is refused unless '" +
                       config.file.string() +
                       "' says deid.reproducible_for_experiments: true (experiments only)");
    deid::MethodSpec spec = config.deid;
    spec.seed = *args.seed;
    deid::make_deidentifier(spec, deid::ParameterNaming{"--", "-"});  // dp and pis take a seed
    config.deid = spec;
  }
  if (config.deid.seed)
    std::cerr << "WARNING: site " << config.site_id << " de-identifies with a fixed seed: the "
              << "noise can be regenerated, so its store is for experiments only (\"private\": "
                 "false in its deid.json)\n";
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
  std::unique_ptr<dist::Communicator> comm;
  if (launch.distributed()) {
    if (!args.launch.timeout_seconds)
      launch.timeout = std::chrono::milliseconds(static_cast<long long>(
          reid::load_train_config(config.train_config).distributed.timeout_seconds * 1000));
    spdlog::info("site {} rank {} of {}: joining the rendezvous at {}", config.site_id,
                 launch.rank, launch.world_size, launch.rendezvous());
    comm = std::make_unique<dist::Communicator>(launch);
  }
  Site site(std::move(config));
  site.set_data_parallel(comm.get());
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
  cmd->add_option("--seed", args->seed,
                  "Seed the de-identification's noise (dp, pis) for a reproducible experiment; "
                  "refused unless the config says deid.reproducible_for_experiments: true");
  cmd->add_flag("--insecure", args->insecure,
                "Plain TCP without CURVE (local experiments only; overrides the config)");
  dist::add_launch_flags(*cmd, args->launch);
  cmd->callback([args] { run(*args); });
}

}  // namespace ppreid::client
