#pragma once

#include <CLI/CLI.hpp>

namespace ppreid::app {

// `ppreid version [--json]`: our version and the versions of the libraries we run against.
void register_version_command(CLI::App& app);

}  // namespace ppreid::app
