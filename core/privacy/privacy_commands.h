#pragma once

#include <CLI/CLI.hpp>

namespace ppreid::privacy {

// `ppreid privacy identity-attack` (T_p of a de-identified dataset), `ppreid privacy
// attribute-attack` (attribute F1 on it) and `ppreid privacy pu-score`.
void register_privacy_commands(CLI::App& app);

}  // namespace ppreid::privacy
