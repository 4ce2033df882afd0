#include "protocols/transport_info.h"

#include <zmq.h>

#include "core/util/error.h"

namespace ppreid::proto {

std::string zmq_version_string() {
  int major = 0, minor = 0, patch = 0;
  zmq_version(&major, &minor, &patch);
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

bool zmq_has_curve() { return zmq_has("curve") == 1; }

void require_curve() {
  if (!zmq_has_curve())
    throw Error("this libzmq (" + zmq_version_string() +
                ") was built without CURVE security; install Debian's libzmq5, which has it");
}

}  // namespace ppreid::proto
