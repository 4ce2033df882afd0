#include "protocols/secagg/shamir.h"

#include <openssl/crypto.h>

#include <cstring>
#include <set>
#include <string>

#include "core/util/error.h"

namespace ppreid::secagg {
namespace {

constexpr int kChunkBytes = 7;  // 5 x 7 = 35 >= 32; every chunk is below 2^56 < p

std::uint64_t add(std::uint64_t a, std::uint64_t b) {
  std::uint64_t s = a + b;  // < 2^62, no overflow
  return s >= kFieldPrime ? s - kFieldPrime : s;
}
std::uint64_t sub(std::uint64_t a, std::uint64_t b) { return a >= b ? a - b : a + kFieldPrime - b; }

std::uint64_t random_field_element() {
  // Rejection sampling: 61 random bits are uniform below 2^61, and only 2^61 - 1 itself is out.
  for (;;) {
    std::uint64_t v = 0;
    random_bytes(reinterpret_cast<std::uint8_t*>(&v), sizeof v);
    v &= kFieldPrime;
    if (v < kFieldPrime) return v;
  }
}

std::array<std::uint64_t, kShareChunks> chunks_of(const Secret32& secret) {
  std::array<std::uint64_t, kShareChunks> c{};
  const auto& b = secret.bytes();
  for (int i = 0; i < 32; ++i) c[i / kChunkBytes] |= std::uint64_t{b[i]} << (8 * (i % kChunkBytes));
  return c;
}

}  // namespace

namespace detail {

std::uint64_t field_mul(std::uint64_t a, std::uint64_t b) {
  const unsigned __int128 p = static_cast<unsigned __int128>(a) * b;
  // 2^61 = 1 (mod p): fold the high bits onto the low ones.
  std::uint64_t r = static_cast<std::uint64_t>(p & kFieldPrime) + static_cast<std::uint64_t>(p >> 61);
  r = (r & kFieldPrime) + (r >> 61);
  return r >= kFieldPrime ? r - kFieldPrime : r;
}

std::uint64_t field_inverse(std::uint64_t a) {
  // Fermat: a^(p-2).
  std::uint64_t result = 1, base = a, e = kFieldPrime - 2;
  while (e) {
    if (e & 1) result = field_mul(result, base);
    base = field_mul(base, base);
    e >>= 1;
  }
  return result;
}

std::uint64_t interpolate(std::span<const Share> points, int chunk, std::uint64_t x) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < points.size(); ++i) {
    std::uint64_t num = 1, den = 1;
    for (std::size_t j = 0; j < points.size(); ++j) {
      if (i == j) continue;
      num = field_mul(num, sub(x, points[j].x));
      den = field_mul(den, sub(points[i].x, points[j].x));
    }
    value = add(value, field_mul(points[i].y[chunk], field_mul(num, field_inverse(den))));
  }
  return value;
}

}  // namespace detail

Bytes Share::to_bytes() const {
  Bytes out(kShareBytes);
  std::memcpy(out.data(), &x, 4);
  for (int c = 0; c < kShareChunks; ++c) std::memcpy(out.data() + 4 + 8 * c, &y[c], 8);
  return out;
}

std::optional<Share> Share::from_bytes(std::span<const std::uint8_t> bytes) {
  if (bytes.size() != kShareBytes) return std::nullopt;
  Share s;
  std::memcpy(&s.x, bytes.data(), 4);
  for (int c = 0; c < kShareChunks; ++c) std::memcpy(&s.y[c], bytes.data() + 4 + 8 * c, 8);
  if (s.x == 0) return std::nullopt;
  for (std::uint64_t v : s.y)
    if (v >= kFieldPrime) return std::nullopt;
  return s;
}

std::vector<Share> split(const Secret32& secret, int threshold, std::span<const std::uint32_t> xs) {
  if (threshold < 1 || static_cast<std::size_t>(threshold) > xs.size())
    throw Error("Shamir sharing: threshold " + std::to_string(threshold) + " with " +
                std::to_string(xs.size()) + " shares; it must be 1.." + std::to_string(xs.size()));
  std::set<std::uint32_t> seen;
  for (std::uint32_t x : xs)
    if (x == 0 || !seen.insert(x).second)
      throw Error("Shamir sharing: evaluation points must be distinct and non-zero");
  // coefficients[c][0] is the secret's chunk c; the others are uniform in the field.
  std::vector<std::array<std::uint64_t, kShareChunks>> coefficients(threshold);
  coefficients[0] = chunks_of(secret);
  for (int k = 1; k < threshold; ++k)
    for (auto& v : coefficients[k]) v = random_field_element();
  std::vector<Share> shares;
  shares.reserve(xs.size());
  for (std::uint32_t x : xs) {
    Share s;
    s.x = x;
    for (int c = 0; c < kShareChunks; ++c) {
      std::uint64_t v = 0;  // Horner
      for (int k = threshold - 1; k >= 0; --k) v = add(detail::field_mul(v, x), coefficients[k][c]);
      s.y[c] = v;
    }
    shares.push_back(s);
  }
  for (auto& row : coefficients) OPENSSL_cleanse(row.data(), sizeof row);
  return shares;
}

Secret32 combine(std::span<const Share> shares, int threshold) {
  if (threshold < 1 || shares.size() < static_cast<std::size_t>(threshold))
    throw Error("Shamir reconstruction needs " + std::to_string(threshold) + " shares; " +
                std::to_string(shares.size()) + " given");
  std::set<std::uint32_t> seen;
  for (const Share& s : shares)
    if (s.x == 0 || !seen.insert(s.x).second)
      throw Error("Shamir reconstruction: share x = " + std::to_string(s.x) +
                  " is zero or appears twice");
  const auto basis = shares.first(static_cast<std::size_t>(threshold));
  for (const Share& extra : shares.subspan(static_cast<std::size_t>(threshold)))
    for (int c = 0; c < kShareChunks; ++c)
      if (detail::interpolate(basis, c, extra.x) != extra.y[c])
        throw Error("Shamir reconstruction: share x = " + std::to_string(extra.x) +
                    " does not lie on the polynomial of the others (a corrupted share)");
  Secret32 secret;
  for (int c = 0; c < kShareChunks; ++c) {
    const std::uint64_t v = detail::interpolate(basis, c, 0);
    const int bytes = c + 1 < kShareChunks ? kChunkBytes : 32 - kChunkBytes * (kShareChunks - 1);
    if (v >> (8 * bytes))
      throw Error("Shamir reconstruction: the shares do not encode a 32-byte secret (corrupted "
                  "or from different secrets)");
    for (int i = 0; i < bytes; ++i) secret.bytes()[c * kChunkBytes + i] = static_cast<std::uint8_t>(v >> (8 * i));
  }
  return secret;
}

}  // namespace ppreid::secagg
