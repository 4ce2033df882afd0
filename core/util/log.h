#pragma once

#include <string>

namespace ppreid::util {

// Logs go to stderr so that stdout stays clean for --json output. Levels: trace, debug, info,
// warn, error, off. Throws ppreid::UsageError for an unknown level.
void init_logging(const std::string& level);

}  // namespace ppreid::util
