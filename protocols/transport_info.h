#pragma once

#include <string>

namespace ppreid::proto {

// "4.3.4": the libzmq the binary runs against (not the headers it was built with).
std::string zmq_version_string();
// Whether this libzmq was built with CURVE (libsodium/tweetnacl); federation refuses to start
// without it.
bool zmq_has_curve();
// Throws ppreid::Error saying what to install when zmq_has_curve() is false.
void require_curve();

}  // namespace ppreid::proto
