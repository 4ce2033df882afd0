#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

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

// Expects f() to throw a ppreid::Error whose message contains `needle`.
template <typename F>
void expect_error_containing(F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "expected ppreid::Error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

// Expects f() to throw a ppreid::Error whose message contains every one of `needles`.
template <typename F>
void expect_error_containing_all(F&& f, const std::vector<std::string>& needles) {
  try {
    f();
    ADD_FAILURE() << "expected ppreid::Error";
  } catch (const Error& e) {
    for (const std::string& needle : needles)
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
          << "'" << needle << "' not in: " << e.what();
  }
}

}  // namespace ppreid::testing
