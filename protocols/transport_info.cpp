#include "protocols/transport_info.h"

#include <zmq.h>

namespace ppreid::proto {

std::string zmq_version_string() {
  int major = 0, minor = 0, patch = 0;
  zmq_version(&major, &minor, &patch);
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

bool zmq_has_curve() { return zmq_has("curve") == 1; }

}  // namespace ppreid::proto
