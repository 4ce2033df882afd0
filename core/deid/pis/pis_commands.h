#pragma once

#include <CLI/CLI.hpp>

namespace ppreid::deid::pis {

// `ppreid pis`: the person identity shift command group, with `pis keygen` (a new key file) and
// `pis reveal` (decrypt a one-time key and print new label -> original identity). Returns the
// group so that further subcommands (`pis train`) can be added to it.
CLI::App* register_pis_commands(CLI::App& app);

}  // namespace ppreid::deid::pis
