#pragma once

// The settings of one secure-aggregation round, as the aggregator announces them in the Task, and
// the bounds a site insists on before it takes part.

#include <cstddef>
#include <cstdint>
#include <string>

namespace ppreid::secagg {

// The threshold t is not here: it depends on the neighbourhoods, which are known only once the
// keys are in, and comes with the KeyList.
struct Params {
  double clipping_range = 8.0;          // c: every coordinate is clipped to [-c, c]
  std::uint64_t quantization_range = std::uint64_t{1} << 22;  // Q: [-c, c] -> 0..Q
  std::uint32_t modulus_bits = 32;      // the sum is taken mod 2^32 or 2^64
  double max_weight = 1.0;              // samples that count as weight 1 (larger ones are capped)
  double clip_norm = 0.0;               // > 0: each site clips its update to this L2 norm
  std::uint32_t sites = 2;              // sites asked in the round: the most words in the sum

  bool operator==(const Params&) const = default;
};

// The word count of a masked vector for a model of `parameters` values: the weight, the loss and
// the values.
inline constexpr std::size_t kExtraWords = 2;
// The training loss travels as a masked word divided by this (losses up to 16 c fit the range).
inline constexpr double kLossScale = 16.0;

// Empty when a site may take part with `params` in a round of `sites` sites; else why not.
// The bounds: 32- or 64-bit modulus; Q >= 2^8 (finer than a byte) and sites * Q below the
// modulus, so the sum of all sites' words never wraps; c finite and > 0; max_weight > 0;
// clip_norm finite and >= 0.
std::string unsafe_reason(const Params& params, std::size_t sites);

// Empty when a neighbourhood of `size` sites (the site itself included) is safe for threshold
// t: 2 <= t <= size and t > size / 2, so that no two disjoint groups of live neighbours can both
// rebuild one site's secrets.
std::string neighbourhood_problem(std::uint32_t threshold, std::size_t size);

// The smallest modulus (32 or 64 bits) in which `sites` words of at most Q never wrap.
std::uint32_t modulus_bits_for(std::size_t sites, std::uint64_t quantization_range);

// The majority threshold for a neighbourhood of `size`: floor(size / 2) + 1.
std::uint32_t majority_threshold(std::size_t size);

}  // namespace ppreid::secagg
