#pragma once

#include <CLI/CLI.hpp>

namespace ppreid::attacks {

// `ppreid attack idlg|dlg`: gradient inversion of one image's shared gradient.
void register_attack_commands(CLI::App& app);

}  // namespace ppreid::attacks
