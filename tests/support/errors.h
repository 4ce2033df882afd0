#pragma once

#include <string>

#include "core/util/error.h"

namespace ppreid::testing {

// The message of the ppreid::Error that f() throws, or a marker saying that it threw none, so
// that tests can match messages with HasSubstr.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no ppreid::Error thrown)";
}

}  // namespace ppreid::testing
