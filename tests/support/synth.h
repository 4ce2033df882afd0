#pragma once

#include <cstdint>

#include "core/data/synth/synth_options.h"

namespace ppreid::testing {

// Options of a small synthetic dataset for tests: no distractors or junk unless set afterwards.
inline data::synth::SynthOptions small_synth(int ids, int cameras, int images_per_id, int height,
                                             int width, std::uint64_t seed, int threads = 2) {
  data::synth::SynthOptions o;
  o.ids = ids;
  o.cameras = cameras;
  o.images_per_id = images_per_id;
  o.height = height;
  o.width = width;
  o.threads = threads;
  o.seed = seed;
  o.distractors = 0;
  o.junk = 0;
  return o;
}

}  // namespace ppreid::testing
