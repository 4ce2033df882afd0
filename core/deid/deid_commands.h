#pragma once

#include <CLI/CLI.hpp>

namespace ppreid::deid {

// `ppreid deid`: de-identify a whole dataset with image DP or a classic baseline.
void register_deid_commands(CLI::App& app);

}  // namespace ppreid::deid
