#pragma once

#include <CLI/CLI.hpp>

namespace ppreid::deid::pis {

// `ppreid pis train --data DIR --config FILE --out DIR [--resume] [--feature-model DIR]`.
void register_pis_train_command(CLI::App& pis);

}  // namespace ppreid::deid::pis
