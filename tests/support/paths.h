#pragma once

#include <filesystem>

namespace ppreid::testing {

// The simulation configs shipped in the source tree (configs/sim/), which the tests load as a
// user would.
inline const std::filesystem::path kSimDir =
    std::filesystem::path(PPREID_SOURCE_DIR) / "configs" / "sim";

}  // namespace ppreid::testing
