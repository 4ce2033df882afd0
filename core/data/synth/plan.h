#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/data/dataset.h"
#include "core/data/synth/synth_options.h"
#include "core/data/synth/traits.h"

namespace ppreid::data::synth {

struct PlannedIdentity {
  int pid = 0;           // 1-based, as in the file names
  int municipality = 0;  // 0-based
  bool train = false;
  int lookalike_of = 0;      // pid of the identity it was derived from, 0 if none
  std::vector<int> cameras;  // 0-based, all in the identity's municipality
  IdentityTraits traits;
};

enum class ImageKind { kIdentity, kDistractor, kJunk };

// One image to render: what, where it goes and the seed that makes it reproducible on any thread.
struct PlannedImage {
  ImageKind kind = ImageKind::kIdentity;
  SplitKind split = SplitKind::kTrain;
  int pid = 0;        // as in the file name: 0 distractor, -1 junk
  int camera = 0;     // 0-based
  int identity = -1;  // index into DatasetPlan::identities (kIdentity, kJunk)
  std::string path;   // relative to the dataset root, e.g. "query/0003_c2s1_000012_01.jpg"
  std::uint64_t seed = 0;
  std::uint64_t tracklet_seed = 0;  // shared by an identity's images in one camera
};

// The whole dataset before any pixel is drawn. Cheap and fully determined by the options (not
// by `threads`), so tests can check the layout rules without rendering.
struct DatasetPlan {
  std::vector<PlannedIdentity> identities;
  std::vector<int> camera_municipality;  // 0-based camera -> 0-based municipality
  std::vector<PlannedImage> images;
};

// Expects validated options.
DatasetPlan plan_dataset(const SynthOptions& options);

}  // namespace ppreid::data::synth
