#pragma once

#include <cstdint>

namespace ppreid::testing {

// The 64-bit LCG that the NumPy scripts in tests/reference/ implement identically (Knuth's MMIX
// constants), so that a test case drawn in C++ is the case the script computed reference values
// for: state <- state * 6364136223846793005 + 1442695040888963407 (mod 2^64), output state >> 33.
class Lcg {
 public:
  explicit Lcg(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    state_ = state_ * 6364136223846793005ULL + 1442695040888963407ULL;
    return state_ >> 33;
  }
  int below(int n) { return static_cast<int>(next() % static_cast<std::uint64_t>(n)); }

 private:
  std::uint64_t state_;
};

}  // namespace ppreid::testing
