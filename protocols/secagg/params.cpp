#include "protocols/secagg/params.h"

#include <cmath>

namespace ppreid::secagg {

namespace {
bool sum_fits(std::size_t sites, std::uint64_t q, std::uint32_t bits) {
  // sites * Q + Q (the weight word is at most Q as well) < 2^bits, without overflow.
  const long double total = static_cast<long double>(sites + 1) * static_cast<long double>(q);
  return total < std::ldexp(1.0L, static_cast<int>(bits));
}
}  // namespace

std::string unsafe_reason(const Params& p, std::size_t sites) {
  if (p.modulus_bits != 32 && p.modulus_bits != 64)
    return "modulus 2^" + std::to_string(p.modulus_bits) + " is not supported (2^32 or 2^64)";
  if (p.quantization_range < 256)
    return "quantization_range " + std::to_string(p.quantization_range) +
           " is below 256: the sum would lose the model";
  if (!sum_fits(sites, p.quantization_range, p.modulus_bits))
    return "the modulus 2^" + std::to_string(p.modulus_bits) + " is too small for " +
           std::to_string(sites) + " sites with quantization_range " +
           std::to_string(p.quantization_range) + ": the sum would wrap around";
  if (!(std::isfinite(p.clipping_range) && p.clipping_range > 0))
    return "clipping_range must be finite and > 0";
  if (!(std::isfinite(p.max_weight) && p.max_weight > 0)) return "max_weight must be finite and > 0";
  if (!(std::isfinite(p.clip_norm) && p.clip_norm >= 0)) return "clip_norm must be finite and >= 0";
  return {};
}

std::string neighbourhood_problem(std::uint32_t t, std::size_t size) {
  if (t < 2) return "threshold " + std::to_string(t) + " is below 2: one share would reveal a secret";
  if (t > size)
    return "threshold " + std::to_string(t) + " exceeds the " + std::to_string(size) +
           " shares of a neighbourhood: no secret could be rebuilt";
  if (2 * static_cast<std::size_t>(t) <= size)
    return "threshold " + std::to_string(t) + " is at most half of the neighbourhood (" +
           std::to_string(size) + " shares): two disjoint groups could each rebuild a secret";
  return {};
}

std::uint32_t modulus_bits_for(std::size_t sites, std::uint64_t q) {
  return sum_fits(sites, q, 32) ? 32 : 64;
}

std::uint32_t majority_threshold(std::size_t size) {
  return static_cast<std::uint32_t>(size / 2 + 1);
}

}  // namespace ppreid::secagg
