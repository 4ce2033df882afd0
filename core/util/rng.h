#pragma once

#include <cstdint>
#include <random>

namespace ppreid::util {

// Seeded generator for experiments and data synthesis (never for privacy noise: that comes from
// the CSPRNG). SplitMix64 is used to derive independent child seeds so that work split across
// threads stays deterministic whatever the scheduling.
class Rng {
 public:
  using result_type = std::uint64_t;

  explicit Rng(std::uint64_t seed) : engine_(mix(seed)) {}

  static constexpr result_type min() { return std::mt19937_64::min(); }
  static constexpr result_type max() { return std::mt19937_64::max(); }
  result_type operator()() { return engine_(); }

  // Uniform real in [lo, hi).
  double uniform(double lo = 0.0, double hi = 1.0) {
    return std::uniform_real_distribution<double>(lo, hi)(engine_);
  }
  // Uniform integer in [lo, hi] (both inclusive).
  std::int64_t uniform_int(std::int64_t lo, std::int64_t hi) {
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(engine_);
  }
  double normal(double mean = 0.0, double stddev = 1.0) {
    return std::normal_distribution<double>(mean, stddev)(engine_);
  }
  bool bernoulli(double p) { return uniform() < p; }

  // A seed for a child stream identified by `stream`; the same (seed, stream) always gives the
  // same child.
  static std::uint64_t derive(std::uint64_t seed, std::uint64_t stream) {
    return mix(seed ^ mix(stream + 0x9E3779B97F4A7C15ULL));
  }

  static std::uint64_t mix(std::uint64_t x) {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
  }

 private:
  std::mt19937_64 engine_;
};

}  // namespace ppreid::util
