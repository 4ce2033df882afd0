#pragma once

// The weights of the combined ReID loss, torch-free so that configs do not pull in LibTorch.

namespace ppreid::reid {

struct LossWeights {
  double id = 1.0, triplet = 1.0, center = 0.0005, centroid = 1.0;
  bool use_id = true, use_triplet = true, use_center = true, use_centroid = true;
};

}  // namespace ppreid::reid
