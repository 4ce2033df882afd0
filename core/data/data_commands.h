#pragma once

#include <CLI/CLI.hpp>

namespace ppreid::data {

// `ppreid synth` and `ppreid data inspect`.
void register_data_commands(CLI::App& app);

}  // namespace ppreid::data
