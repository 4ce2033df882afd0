#pragma once

// The CLI11 wiring of every `ppreid` command lives here in apps/ppreid/, one file per command
// family; the libraries below expose plain functions with typed options, callable without CLI11
// from tests, the simulator and other programs. Each register function stays in the namespace
// of the library it drives, so the flag code reads that library's names unqualified.

#include <CLI/CLI.hpp>

#include "core/distributed/launch.h"

namespace ppreid::app {
// `ppreid version`: ppreid and its libraries' versions.
void register_version_command(CLI::App& app);
}  // namespace ppreid::app

namespace ppreid::data {
// `ppreid synth` and `ppreid data inspect`.
void register_data_commands(CLI::App& app);
}  // namespace ppreid::data

namespace ppreid::deid {
// `ppreid deid`.
void register_deid_commands(CLI::App& app);
}  // namespace ppreid::deid

namespace ppreid::deid::pis {
// `ppreid pis`: the person identity shift command group, with `pis keygen` (a new key file) and
// `pis reveal` (decrypt a one-time key and print new label -> original identity). Returns the
// group so that further subcommands (`pis train`) can be added to it.
CLI::App* register_pis_commands(CLI::App& app);
// `ppreid pis train --data DIR --config FILE --out DIR [--resume] [--feature-model DIR]`.
void register_pis_train_command(CLI::App& pis);
}  // namespace ppreid::deid::pis

namespace ppreid::reid {
// `ppreid train`, `ppreid eval`, `ppreid extract` and `ppreid weights`.
void register_reid_commands(CLI::App& app);
}  // namespace ppreid::reid

namespace ppreid::privacy {
// `ppreid privacy identity-attack | attribute-attack | pu-score`.
void register_privacy_commands(CLI::App& app);
}  // namespace ppreid::privacy

namespace ppreid::attacks {
// `ppreid attack idlg | dlg`.
void register_attack_commands(CLI::App& app);
}  // namespace ppreid::attacks

namespace ppreid::proto {
// `ppreid keygen`.
void register_protocol_commands(CLI::App& app);
}  // namespace ppreid::proto

namespace ppreid::agg {
// `ppreid aggregator` and `ppreid aggregator status`.
void register_aggregator_commands(CLI::App& app);
}  // namespace ppreid::agg

namespace ppreid::client {
// `ppreid site`.
void register_site_command(CLI::App& app);
}  // namespace ppreid::client

namespace ppreid::sim {
// `ppreid simulate`.
void register_simulate_command(CLI::App& app);
}  // namespace ppreid::sim

namespace ppreid::dist {
// --world-size, --rank, --rendezvous, --backend and --dist-timeout on `cmd` (ppreid train and
// ppreid site), filling `flags`; resolve_launch() then merges them with the environment.
void add_launch_flags(CLI::App& cmd, LaunchFlags& flags);
}  // namespace ppreid::dist
