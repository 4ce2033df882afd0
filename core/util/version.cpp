#include "core/util/version.h"

namespace ppreid {

const char* software_version() { return PPREID_VERSION; }

}  // namespace ppreid
