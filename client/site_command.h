#pragma once

#include <CLI/CLI.hpp>

namespace ppreid::client {

// `ppreid site --config configs/site.yaml [--insecure]`: runs one site until the federation is
// finished (exit 0), a signal stops it (Bye sent, exit 0) or it fails (exit 1, `error: ...`).
void register_site_command(CLI::App& app);

}  // namespace ppreid::client
