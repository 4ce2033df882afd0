#include "core/reid/centroid_protocol.h"

#include "core/util/error.h"

namespace ppreid::reid {

CentroidProtocol parse_centroid_protocol(std::string_view name) {
  if (name == "reference") return CentroidProtocol::kReference;
  if (name == "strict") return CentroidProtocol::kStrict;
  if (name == "all-cameras") return CentroidProtocol::kAllCameras;
  throw UsageError("unknown centroid protocol '" + std::string(name) +
                   "'; use 'reference' (centroids-reid, the default), 'strict' or 'all-cameras'");
}

std::string to_string(CentroidProtocol protocol) {
  switch (protocol) {
    case CentroidProtocol::kReference:
      return "reference";
    case CentroidProtocol::kStrict:
      return "strict";
    case CentroidProtocol::kAllCameras:
      return "all-cameras";
  }
  return "reference";
}

}  // namespace ppreid::reid
