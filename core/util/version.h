#pragma once

namespace ppreid {

// The ppreid release (CMake's PROJECT_VERSION), e.g. for manifests that say what produced them.
const char* software_version();

}  // namespace ppreid
