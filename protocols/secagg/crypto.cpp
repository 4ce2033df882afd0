#include "protocols/secagg/crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "core/util/error.h"

namespace ppreid::secagg {
namespace {

constexpr std::size_t kNonceBytes = 12;
constexpr std::size_t kTagBytes = 16;
// Keystream is made in blocks that stay in L1/L2 while they are added in.
constexpr std::size_t kStreamBlockBytes = 16 * 1024;

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* p) const { EVP_CIPHER_CTX_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

[[noreturn]] void openssl_failed(const char* what) {
  throw Error(std::string("secure aggregation: OpenSSL failed to ") + what);
}

Pkey private_key(const Secret32& secret) {
  Pkey key(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, secret.bytes().data(), 32));
  if (!key) openssl_failed("load an X25519 private key");
  return key;
}

std::span<const std::uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

alignas(64) const std::uint8_t kZeros[kStreamBlockBytes] = {};

template <typename Word>
void apply_stream_words(const Secret32& seed, std::span<Word> words, StreamOp op) {
  KeyStream keystream(seed);
  alignas(64) std::uint8_t stream[kStreamBlockBytes];
  constexpr std::size_t kPerBlock = kStreamBlockBytes / sizeof(Word);
  for (std::size_t done = 0; done < words.size();) {
    const std::size_t n = std::min(kPerBlock, words.size() - done);
    Word* w = words.data() + done;
    if (op == StreamOp::kFill) {
      keystream.next(reinterpret_cast<std::uint8_t*>(w), n * sizeof(Word));
    } else {
      keystream.next(stream, n * sizeof(Word));
      // Little-endian words on every machine this builds for (the codec assumes it too).
      const Word* s = reinterpret_cast<const Word*>(stream);
      if (op == StreamOp::kAdd)
        for (std::size_t i = 0; i < n; ++i) w[i] += s[i];
      else
        for (std::size_t i = 0; i < n; ++i) w[i] -= s[i];
    }
    done += n;
  }
  OPENSSL_cleanse(stream, sizeof stream);
}

}  // namespace

KeyStream::KeyStream(const Secret32& seed) {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  const std::uint8_t iv[16] = {};
  if (!ctx || EVP_EncryptInit_ex(ctx, EVP_aes_256_ctr(), nullptr, seed.bytes().data(), iv) != 1) {
    EVP_CIPHER_CTX_free(ctx);
    openssl_failed("start AES-256-CTR");
  }
  ctx_ = ctx;
}

KeyStream::~KeyStream() { EVP_CIPHER_CTX_free(static_cast<EVP_CIPHER_CTX*>(ctx_)); }

void KeyStream::next(std::uint8_t* out, std::size_t bytes) {
  // CTR mode: encrypting zeros yields the keystream itself.
  for (std::size_t done = 0; done < bytes;) {
    const std::size_t n = std::min(kStreamBlockBytes, bytes - done);
    int len = 0;
    if (EVP_EncryptUpdate(static_cast<EVP_CIPHER_CTX*>(ctx_), out + done, &len, kZeros,
                          static_cast<int>(n)) != 1)
      openssl_failed("run AES-256-CTR");
    done += n;
  }
}

Secret32::~Secret32() { OPENSSL_cleanse(bytes_.data(), bytes_.size()); }

void random_bytes(std::uint8_t* out, std::size_t n) {
  if (RAND_priv_bytes(out, static_cast<int>(n)) != 1) openssl_failed("draw random bytes");
}

Secret32 random_secret() {
  Secret32 s;
  random_bytes(s.bytes().data(), 32);
  return s;
}

X25519KeyPair X25519KeyPair::generate() { return from_secret(random_secret()); }

X25519KeyPair X25519KeyPair::from_secret(const Secret32& secret) {
  X25519KeyPair pair;
  pair.secret = secret;
  Pkey key = private_key(secret);
  std::size_t len = 32;
  if (EVP_PKEY_get_raw_public_key(key.get(), pair.public_key.data(), &len) != 1 || len != 32)
    openssl_failed("derive an X25519 public key");
  return pair;
}

Secret32 x25519(const Secret32& secret, const Key32& peer_public) {
  Pkey mine = private_key(secret);
  Pkey peer(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, peer_public.data(), 32));
  if (!peer) openssl_failed("load an X25519 public key");
  PkeyCtx ctx(EVP_PKEY_CTX_new(mine.get(), nullptr));
  Secret32 out;
  std::size_t len = 32;
  // OpenSSL refuses a peer key whose shared secret is all zeros (a low-order point) here.
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 ||
      EVP_PKEY_derive_set_peer(ctx.get(), peer.get()) != 1 ||
      EVP_PKEY_derive(ctx.get(), out.bytes().data(), &len) != 1 || len != 32)
    throw Error("secure aggregation: X25519 with this public key failed (a low-order or "
                "malformed key); the peer's key is refused");
  return out;
}

Bytes hkdf_sha256(std::span<const std::uint8_t> ikm, std::span<const std::uint8_t> salt,
                  std::span<const std::uint8_t> info, std::size_t length) {
  std::unique_ptr<EVP_KDF, decltype(&EVP_KDF_free)> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr),
                                                         EVP_KDF_free);
  if (!kdf) openssl_failed("fetch HKDF");
  std::unique_ptr<EVP_KDF_CTX, decltype(&EVP_KDF_CTX_free)> ctx(EVP_KDF_CTX_new(kdf.get()),
                                                                 EVP_KDF_CTX_free);
  char digest[] = "SHA256";
  // OSSL_PARAM wants non-const pointers; OpenSSL only reads them.
  auto octets = [](const char* name, std::span<const std::uint8_t> s) {
    static const std::uint8_t kEmpty = 0;
    return OSSL_PARAM_construct_octet_string(
        name, const_cast<std::uint8_t*>(s.empty() ? &kEmpty : s.data()), s.size());
  };
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      octets(OSSL_KDF_PARAM_KEY, ikm),
      octets(OSSL_KDF_PARAM_SALT, salt),
      octets(OSSL_KDF_PARAM_INFO, info),
      OSSL_PARAM_construct_end(),
  };
  Bytes out(length);
  if (!ctx || EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1)
    openssl_failed("run HKDF-SHA256");
  return out;
}

Secret32 hkdf_key(const Secret32& ikm, std::string_view salt, std::string_view info) {
  Bytes out = hkdf_sha256(ikm.bytes(), as_bytes(salt), as_bytes(info), 32);
  Secret32 key;
  std::copy(out.begin(), out.end(), key.bytes().begin());
  OPENSSL_cleanse(out.data(), out.size());
  return key;
}

Bytes seal(const Secret32& key, std::span<const std::uint8_t> plaintext,
           std::span<const std::uint8_t> associated_data) {
  Bytes out(kNonceBytes + plaintext.size() + kTagBytes);
  random_bytes(out.data(), kNonceBytes);
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (!ctx ||
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.bytes().data(), out.data()) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, associated_data.data(),
                        static_cast<int>(associated_data.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), out.data() + kNonceBytes, &len, plaintext.data(),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), out.data() + kNonceBytes + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes,
                          out.data() + kNonceBytes + plaintext.size()) != 1)
    openssl_failed("encrypt with AES-256-GCM");
  return out;
}

bool open(const Secret32& key, std::span<const std::uint8_t> sealed,
          std::span<const std::uint8_t> associated_data, Bytes& plaintext) {
  plaintext.clear();
  if (sealed.size() < kNonceBytes + kTagBytes) return false;
  const std::size_t n = sealed.size() - kNonceBytes - kTagBytes;
  Bytes out(n);
  std::uint8_t tag[kTagBytes];
  std::memcpy(tag, sealed.data() + kNonceBytes + n, kTagBytes);
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (!ctx ||
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.bytes().data(), sealed.data()) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, associated_data.data(),
                        static_cast<int>(associated_data.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), out.data(), &len, sealed.data() + kNonceBytes,
                        static_cast<int>(n)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag) != 1)
    openssl_failed("decrypt with AES-256-GCM");
  if (EVP_DecryptFinal_ex(ctx.get(), out.data() + len, &len) != 1) {
    OPENSSL_cleanse(out.data(), out.size());
    return false;
  }
  plaintext = std::move(out);
  return true;
}

void apply_stream(const Secret32& seed, std::span<std::uint32_t> words, StreamOp op) {
  apply_stream_words(seed, words, op);
}
void apply_stream(const Secret32& seed, std::span<std::uint64_t> words, StreamOp op) {
  apply_stream_words(seed, words, op);
}

}  // namespace ppreid::secagg
