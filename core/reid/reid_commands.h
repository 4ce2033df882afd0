#pragma once

#include <CLI/CLI.hpp>

namespace ppreid::reid {

// `ppreid train`, `ppreid eval`, `ppreid weights import|export`.
void register_reid_commands(CLI::App& app);

}  // namespace ppreid::reid
