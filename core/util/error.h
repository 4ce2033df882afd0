#pragma once

#include <stdexcept>
#include <string>

namespace ppreid {

// The one exception type of the project. The message must say what was wrong, where (file, line,
// flag, message type) and what to do; the CLI prints it as `error: <message>` and exits 1.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// A mistake in how a command was invoked (bad flag value, conflicting options): exit code 2.
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& message) : Error(message) {}
};

// strerror(errno) of the calling thread, for messages about a failed system call.
std::string errno_text();

}  // namespace ppreid
