#pragma once

// Which centroid-retrieval protocol an evaluation uses. Torch-free so that configs
// (reid/train_config.h) can name it without pulling in LibTorch; core/reid/centroids.h says
// exactly what each protocol does.

#include <string>
#include <string_view>

namespace ppreid::reid {

enum class CentroidProtocol {
  // centroids-reid (Wieczorek et al. 2021) with KEEP_CAMID_CENTROIDS = True, its Market/Duke
  // default: the figures compare with the papers. The default everywhere.
  kReference,
  // ppreid's earlier protocol: per query camera, every gallery identity's centroid without that
  // camera's images; distractors and gallery-only identities stay in the ranking.
  kStrict,
  // One centroid per identity from all of its gallery images (same-camera shots included, so
  // optimistic); distractors and gallery-only identities stay in the ranking.
  kAllCameras,
};

// The names used by `--centroid-protocol` and `eval.centroid_protocol`.
inline constexpr std::string_view kCentroidProtocolNames[] = {"reference", "strict", "all-cameras"};

// "reference" | "strict" | "all-cameras"; anything else throws ppreid::UsageError listing them.
CentroidProtocol parse_centroid_protocol(std::string_view name);
std::string to_string(CentroidProtocol protocol);

}  // namespace ppreid::reid
