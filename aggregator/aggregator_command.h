#pragma once

#include <CLI/CLI.hpp>

namespace ppreid::agg {

// `ppreid aggregator --config F`: the federation's central daemon; `ppreid aggregator status`.
void register_aggregator_commands(CLI::App& app);

}  // namespace ppreid::agg
