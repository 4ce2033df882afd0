#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace ppreid::testing {

struct RunResult {
  int exit_code = -1;
  std::string out;  // stdout and stderr together
};

// Runs the real `ppreid` binary (PPREID_BINARY, set by tests/CMakeLists.txt) with `args` through
// the shell: exit codes and messages are part of the user interface.
inline RunResult run_ppreid(const std::string& args) {
  std::string cmd = std::string(PPREID_BINARY) + " " + args + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  RunResult r;
  if (!pipe) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) r.out.append(buf.data(), n);
  int status = ::pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace ppreid::testing
