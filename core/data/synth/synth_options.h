#pragma once

#include <cstdint>
#include <string>

namespace ppreid::data::synth {

// Parameters of the procedural pedestrian dataset (`ppreid synth`). Identities are split half for
// training and half for testing like Market-1501; every identity appears in at least two cameras
// of its municipality so every query has a cross-camera match.
struct SynthOptions {
  int ids = 100;              // identities in total (train + test), >= 4
  int cameras = 6;            // cameras in total, split among municipalities
  int images_per_id = 12;     // images per identity across its cameras, >= 4
  int height = 128;
  int width = 64;
  int municipalities = 1;     // identities are disjoint between municipalities
  int distractors = 0;        // pid-0 gallery images (background and body fragments)
  int junk = 0;               // pid -1 images (dropped by readers, as in Market)
  double lookalike_fraction = 0.3;  // identities derived from another with 1-2 traits changed
  int jpeg_quality = 95;
  int threads = 0;            // 0 = hardware concurrency
  std::uint64_t seed = 1;
};

struct SynthSummary {
  int train_images = 0;
  int query_images = 0;
  int gallery_images = 0;
  int train_ids = 0;
  int test_ids = 0;
  int cameras = 0;
  int municipalities = 0;
  double seconds = 0.0;
};

}  // namespace ppreid::data::synth
