#pragma once

#include <CLI/CLI.hpp>

namespace ppreid::proto {

// `ppreid keygen --out PREFIX`: a CURVE key pair for an aggregator or a site (PREFIX.key, secret,
// mode 0600; PREFIX.pub, Z85).
void register_protocol_commands(CLI::App& app);

}  // namespace ppreid::proto
