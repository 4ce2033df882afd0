#pragma once

#include <array>
#include <cstdint>

namespace ppreid::data {

// Training-time augmentation (the BoT recipe): resize, random horizontal flip, zero-pad then
// random crop back to size, normalization, random erasing (filled with the per-channel mean).
struct TransformOptions {
  int height = 128;
  int width = 64;
  double flip_prob = 0.5;
  int pad = 10;
  double erasing_prob = 0.5;
  double erasing_area_min = 0.02;  // fraction of the image area
  double erasing_area_max = 0.4;
  double erasing_aspect_min = 0.3; // aspect ratio drawn log-uniformly in [min, 1/min]
  std::array<float, 3> mean = {0.485f, 0.456f, 0.406f};  // RGB
  std::array<float, 3> std = {0.229f, 0.224f, 0.225f};
};

// P x K identity batches fed by a pool of decoding workers.
struct LoaderOptions {
  int p = 16;               // identities per batch
  int k = 4;                // images per identity
  int workers = 2;          // decoding threads; 0 decodes on the calling thread
  int prefetch_batches = 4; // batches decoded ahead of the consumer
  std::uint64_t seed = 1;
  // Data-parallel training: every step plans one global batch of shard_count * P identities and
  // this process takes identities [shard_index * P, (shard_index + 1) * P) of it, so the ranks'
  // batches are disjoint and together are exactly the batch one process with P' = W * P gets.
  int shard_count = 1;
  int shard_index = 0;
};

}  // namespace ppreid::data
