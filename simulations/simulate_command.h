#pragma once

#include <CLI/CLI.hpp>

namespace ppreid::sim {

// `ppreid simulate --config configs/sim/NAME.yaml --out DIR [--resume] [--json]`.
void register_simulate_command(CLI::App& app);

}  // namespace ppreid::sim
