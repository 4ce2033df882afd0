#include "core/util/error.h"

#include <cerrno>
#include <cstring>

namespace ppreid {

std::string errno_text() { return std::strerror(errno); }

}  // namespace ppreid
