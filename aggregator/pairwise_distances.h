#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace ppreid::agg {

// One tensor of one update as the distance computation reads it: value j is
// data[j] + (base ? base[j] : 0), so a delta update is seen as global + delta without a copy.
struct FlatPart {
  const float* data = nullptr;
  const float* base = nullptr;
};

// Squared Euclidean distances between n updates over all their tensors (parts[u][t] is tensor t
// of update u; numels[t] its length, the same for every update): an n x n float64 tensor,
// symmetric with a zero diagonal.
//
// Computed as Gram products, not pair by pair: the coordinates are taken in blocks; each block's
// n x b values are centred on their per-coordinate mean over the n updates (distances do not
// change, and the Gram entries stay small, so ||a||^2 + ||b||^2 - 2ab does not cancel: weights
// are large, their differences small) and G += D D^T is accumulated in 2 x 2 register tiles of
// float64 (LibTorch's matrix product goes to whatever BLAS the system has: Debian's default is
// the unoptimized reference BLAS, several times slower here). Threads take contiguous ranges of
// coordinates, each with its own block and Gram matrix. Every update is read once; extra
// memory is one n x b block and one n x n matrix per thread.
at::Tensor pairwise_squared_distances(const std::vector<std::vector<FlatPart>>& parts,
                                      const std::vector<std::int64_t>& numels);

namespace detail {
// The straightforward implementation (what Flower's _compute_distances does): one pass over
// both updates per pair, n(n-1)/2 passes. The tests' and the benchmark's reference.
at::Tensor pairwise_squared_distances_by_pairs(const std::vector<std::vector<FlatPart>>& parts,
                                               const std::vector<std::int64_t>& numels);
}  // namespace detail

}  // namespace ppreid::agg
