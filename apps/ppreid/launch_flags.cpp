#include "apps/ppreid/commands.h"

namespace ppreid::dist {

void add_launch_flags(CLI::App& cmd, LaunchFlags& flags) {
  const std::string group = "Data-parallel training (several processes, one site)";
  cmd.add_option_function<int>(
         "--world-size", [&flags](int v) { flags.world_size = v; },
         "Processes training together (default: $WORLD_SIZE, else 1)")
      ->group(group);
  cmd.add_option_function<int>(
         "--rank", [&flags](int v) { flags.rank = v; },
         "This process's rank, 0..W-1; rank 0 hosts the rendezvous (default: $RANK, else 0)")
      ->group(group);
  cmd.add_option_function<std::string>(
         "--rendezvous", [&flags](const std::string& v) { flags.rendezvous = v; },
         "HOST:PORT of rank 0 (default: $MASTER_ADDR:$MASTER_PORT)")
      ->group(group);
  cmd.add_option("--backend", flags.backend,
                 "Collectives: gloo (CPU), nccl (CUDA builds only) or auto")
      ->check(CLI::IsMember({"gloo", "nccl", "auto"}))
      ->group(group);
  cmd.add_option_function<double>(
         "--dist-timeout", [&flags](double v) { flags.timeout_seconds = v; },
         "Seconds to wait for other ranks before failing (default: distributed.timeout_seconds)")
      ->group(group);
}

}  // namespace ppreid::dist
