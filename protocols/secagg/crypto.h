#pragma once

// The cryptography of secure aggregation, over OpenSSL 3: X25519 key agreement (RFC 7748),
// HKDF-SHA256 (RFC 5869), AES-256-GCM for the key shares and AES-256-CTR as the mask generator.
// Secrets live in SecretBytes, which wipes itself; nothing here logs.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ppreid::secagg {

using Bytes = std::vector<std::uint8_t>;
using Key32 = std::array<std::uint8_t, 32>;

// 32 secret bytes that are zeroed (OPENSSL_cleanse) when they go away.
class Secret32 {
 public:
  Secret32() = default;
  explicit Secret32(const Key32& bytes) : bytes_(bytes) {}
  Secret32(const Secret32&) = default;
  Secret32& operator=(const Secret32&) = default;
  ~Secret32();
  const Key32& bytes() const { return bytes_; }
  Key32& bytes() { return bytes_; }
  bool operator==(const Secret32&) const = default;

 private:
  Key32 bytes_{};
};

// `n` bytes from OpenSSL's private DRBG.
void random_bytes(std::uint8_t* out, std::size_t n);
Secret32 random_secret();

struct X25519KeyPair {
  Secret32 secret;
  Key32 public_key{};

  static X25519KeyPair generate();
  static X25519KeyPair from_secret(const Secret32& secret);
};

// X25519(secret, peer_public). Throws ppreid::Error for a low-order peer key (all-zero result),
// which RFC 7748 section 6.1 says to refuse.
Secret32 x25519(const Secret32& secret, const Key32& peer_public);

// HKDF-SHA256 (RFC 5869): extract with `salt`, expand with `info` to `length` bytes.
Bytes hkdf_sha256(std::span<const std::uint8_t> ikm, std::span<const std::uint8_t> salt,
                  std::span<const std::uint8_t> info, std::size_t length);
Secret32 hkdf_key(const Secret32& ikm, std::string_view salt, std::string_view info);

// AES-256-GCM with a random 96-bit nonce: nonce | ciphertext | 16-byte tag.
Bytes seal(const Secret32& key, std::span<const std::uint8_t> plaintext,
           std::span<const std::uint8_t> associated_data);
// True and the plaintext when the tag verifies; false for a tampered or truncated ciphertext, a
// wrong key or wrong associated data.
bool open(const Secret32& key, std::span<const std::uint8_t> sealed,
          std::span<const std::uint8_t> associated_data, Bytes& plaintext);

// The mask generator: AES-256-CTR keyed by `seed` (IV zero) as a stream of little-endian words.
// Each seed is used for one vector only (the seeds are per round and per pair), so the zero IV
// never repeats a keystream under one key.
//   add_stream:  words[i] += stream[i]   (mod 2^bits of Word)
//   sub_stream:  words[i] -= stream[i]
//   fill_stream: words[i]  = stream[i]
enum class StreamOp { kAdd, kSubtract, kFill };

// The same stream, drawn piece by piece: next() continues where the last call stopped.
class KeyStream {
 public:
  explicit KeyStream(const Secret32& seed);
  ~KeyStream();
  KeyStream(const KeyStream&) = delete;
  KeyStream& operator=(const KeyStream&) = delete;
  // `bytes` stream bytes into `out`.
  void next(std::uint8_t* out, std::size_t bytes);

 private:
  void* ctx_;  // EVP_CIPHER_CTX
};

void apply_stream(const Secret32& seed, std::span<std::uint32_t> words, StreamOp op);
void apply_stream(const Secret32& seed, std::span<std::uint64_t> words, StreamOp op);

}  // namespace ppreid::secagg
