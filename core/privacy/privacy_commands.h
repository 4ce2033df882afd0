#pragma once

#include <CLI/CLI.hpp>

namespace ppreid::privacy {

// `ppreid privacy identity-attack` (T_p of a de-identified dataset) and `ppreid privacy pu-score`.
void register_privacy_commands(CLI::App& app);

}  // namespace ppreid::privacy
