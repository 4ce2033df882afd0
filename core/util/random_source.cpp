#include "core/util/random_source.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstring>

#include "core/util/error.h"

namespace ppreid::util {
namespace {

std::string openssl_error() {
  char buf[256];
  ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
  return buf;
}

}  // namespace

std::uint32_t RandomSource::next_u32() {
  if (pos_ == buffer_.size()) {
    buffer_.resize(1024);
    fill(buffer_.data(), buffer_.size());
    pos_ = 0;
  }
  return buffer_[pos_++];
}

double RandomSource::uniform_open0() {
  std::uint64_t bits = (static_cast<std::uint64_t>(next_u32()) << 21) ^ (next_u32() >> 11);
  return (static_cast<double>(bits) + 1.0) * 0x1.0p-53;
}

void CsprngSource::fill(std::uint32_t* out, std::size_t n) {
  auto* bytes = reinterpret_cast<unsigned char*>(out);
  std::size_t total = n * sizeof(std::uint32_t);
  while (total > 0) {
    int chunk = static_cast<int>(std::min<std::size_t>(total, INT_MAX / 2));
    if (RAND_priv_bytes(bytes, chunk) != 1)
      throw Error("OpenSSL's CSPRNG failed (" + openssl_error() +
                  "); refusing to produce privacy noise without it");
    bytes += chunk;
    total -= static_cast<std::size_t>(chunk);
  }
}

struct DrbgSource::Cipher {
  EVP_CIPHER_CTX* ctx = nullptr;
  ~Cipher() { EVP_CIPHER_CTX_free(ctx); }
};

DrbgSource::DrbgSource(std::uint64_t seed, std::uint64_t stream) : cipher_(new Cipher) {
  // Key = SHA-256("ppreid-drbg-v1" || seed); the stream id is the upper half of the counter
  // block, so streams never overlap (2^64 blocks each).
  std::array<unsigned char, 32> key{};
  unsigned char material[14 + 8];
  std::memcpy(material, "ppreid-drbg-v1", 14);
  for (int i = 0; i < 8; ++i) material[14 + i] = static_cast<unsigned char>(seed >> (8 * i));
  unsigned int key_len = 0;
  if (EVP_Digest(material, sizeof material, key.data(), &key_len, EVP_sha256(), nullptr) != 1)
    throw Error("OpenSSL SHA-256 failed: " + openssl_error());
  std::array<unsigned char, 16> iv{};
  for (int i = 0; i < 8; ++i) iv[i] = static_cast<unsigned char>(stream >> (56 - 8 * i));
  cipher_->ctx = EVP_CIPHER_CTX_new();
  if (!cipher_->ctx ||
      EVP_EncryptInit_ex(cipher_->ctx, EVP_aes_256_ctr(), nullptr, key.data(), iv.data()) != 1)
    throw Error("OpenSSL AES-256-CTR setup failed: " + openssl_error());
}

DrbgSource::~DrbgSource() = default;

void DrbgSource::fill(std::uint32_t* out, std::size_t n) {
  // The keystream is the encryption of zeros.
  auto* bytes = reinterpret_cast<unsigned char*>(out);
  std::size_t total = n * sizeof(std::uint32_t);
  std::memset(bytes, 0, total);
  while (total > 0) {
    int chunk = static_cast<int>(std::min<std::size_t>(total, 1 << 30));
    int written = 0;
    if (EVP_EncryptUpdate(cipher_->ctx, bytes, &written, bytes, chunk) != 1 || written != chunk)
      throw Error("OpenSSL AES-256-CTR failed: " + openssl_error());
    bytes += chunk;
    total -= static_cast<std::size_t>(chunk);
  }
}

std::unique_ptr<RandomSource> make_random_source(std::optional<std::uint64_t> seed,
                                                 std::uint64_t stream) {
  if (seed) return std::make_unique<DrbgSource>(*seed, stream);
  return std::make_unique<CsprngSource>();
}

}  // namespace ppreid::util
