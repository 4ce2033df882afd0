#pragma once

// Shamir secret sharing of 32-byte secrets over the prime field GF(2^61 - 1). A secret is cut
// into five chunks of at most 7 bytes (each below the prime), and every chunk is shared with its
// own random polynomial of degree t - 1; a share is one point (x, y1..y5).

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "protocols/secagg/crypto.h"

namespace ppreid::secagg {

inline constexpr std::uint64_t kFieldPrime = (std::uint64_t{1} << 61) - 1;
inline constexpr int kShareChunks = 5;
inline constexpr std::size_t kShareBytes = 4 + 8 * kShareChunks;

struct Share {
  std::uint32_t x = 0;  // the evaluation point, never 0
  std::array<std::uint64_t, kShareChunks> y{};

  Bytes to_bytes() const;
  // std::nullopt for a wrong length, x = 0 or a value outside the field.
  static std::optional<Share> from_bytes(std::span<const std::uint8_t> bytes);
  bool operator==(const Share&) const = default;
};

// One share per x (distinct, non-zero); any `threshold` of them give the secret back, fewer
// reveal nothing about it. Coefficients come from OpenSSL's CSPRNG.
std::vector<Share> split(const Secret32& secret, int threshold, std::span<const std::uint32_t> xs);

// The secret from at least `threshold` shares. Extra shares are checked against the polynomial
// the first `threshold` define. Throws ppreid::Error for fewer than `threshold` shares,
// repeated x, shares that do not lie on one polynomial of degree threshold - 1, or a result that
// is not a 32-byte secret (the chunks would exceed 7 bytes).
Secret32 combine(std::span<const Share> shares, int threshold);

namespace detail {
std::uint64_t field_mul(std::uint64_t a, std::uint64_t b);
std::uint64_t field_inverse(std::uint64_t a);
// The value at x of the polynomial through `points` (x_i, y_i) for chunk `chunk`.
std::uint64_t interpolate(std::span<const Share> points, int chunk, std::uint64_t x);
}  // namespace detail

}  // namespace ppreid::secagg
