#pragma once

#include <CLI/CLI.hpp>

#include "core/distributed/launch.h"

namespace ppreid::dist {

// --world-size, --rank, --rendezvous, --backend and --dist-timeout on `cmd` (ppreid train and
// ppreid site), filling `flags`; resolve_launch() then merges them with the environment.
void add_launch_flags(CLI::App& cmd, LaunchFlags& flags);

}  // namespace ppreid::dist
