#include "core/deid/pis/one_time_key.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "core/util/atomic_file.h"
#include "core/util/error.h"
#include "core/util/private_file.h"

namespace ppreid::deid::pis {
namespace fs = std::filesystem;
namespace {

constexpr std::string_view kMagic = "PPREID-OTK1";
constexpr std::size_t kKeyBytes = 32;
constexpr std::size_t kNonceBytes = 12;
constexpr std::size_t kTagBytes = 16;
constexpr std::size_t kMaxKeyFileBytes = 2 * kKeyBytes + 2;  // hex, "\r\n" at most

using Key = std::array<std::uint8_t, kKeyBytes>;

std::string openssl_error() {
  char buf[256];
  ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
  return buf;
}

struct CipherCtx {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  ~CipherCtx() { EVP_CIPHER_CTX_free(ctx); }
};

std::string to_hex(const std::uint8_t* bytes, std::size_t n) {
  static const char digits[] = "0123456789abcdef";
  std::string out(2 * n, '0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = digits[bytes[i] >> 4];
    out[2 * i + 1] = digits[bytes[i] & 15];
  }
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

[[noreturn]] void cannot_decrypt(const fs::path& file) {
  throw Error("cannot decrypt '" + file.string() + "': wrong key file or the file was modified");
}

}  // namespace

void create_key_file(const fs::path& path) {
  Key key{};
  util::WipeOnExit<Key> wipe_key{key};
  if (RAND_priv_bytes(key.data(), static_cast<int>(key.size())) != 1)
    throw Error("OpenSSL's CSPRNG failed (" + openssl_error() + "); no key file was written");
  std::string text = to_hex(key.data(), key.size()) + "\n";
  util::WipeOnExit<std::string> wipe_text{text};
  util::create_private_file(path, text, "key file");
}

std::array<std::uint8_t, 32> read_key_file(const fs::path& path) {
  const std::string bad = "key file '" + path.string() +
                          "' is not a ppreid key file (64 hex characters and a newline, as "
                          "written by `ppreid pis keygen`)";
  std::string text = util::read_private_file(
      path, kMaxKeyFileBytes, "key file",
      "create one with `ppreid pis keygen --out " + path.string() + "`", bad);
  util::WipeOnExit<std::string> wipe_text{text};
  std::size_t n = text.size();
  if (n > 0 && text[n - 1] == '\n') --n;
  if (n > 0 && text[n - 1] == '\r') --n;
  if (n != 2 * kKeyBytes) throw Error(bad);
  Key key{};
  for (std::size_t i = 0; i < kKeyBytes; ++i) {
    int hi = hex_value(text[2 * i]), lo = hex_value(text[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      OPENSSL_cleanse(key.data(), key.size());
      throw Error(bad);
    }
    key[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return key;
}

void write_one_time_key(const fs::path& file, const ShiftPlan& plan, const fs::path& key_file) {
  Key key = read_key_file(key_file);
  util::WipeOnExit<Key> wipe_key{key};
  std::string plain = plan_to_json(plan).dump();
  util::WipeOnExit<std::string> wipe_plain{plain};

  std::string out(kMagic);
  out.resize(kMagic.size() + kNonceBytes + plain.size() + kTagBytes);
  auto* nonce = reinterpret_cast<unsigned char*>(out.data() + kMagic.size());
  auto* cipher = nonce + kNonceBytes;
  auto* tag = cipher + plain.size();
  if (RAND_bytes(nonce, static_cast<int>(kNonceBytes)) != 1)
    throw Error("OpenSSL's CSPRNG failed (" + openssl_error() + "); nothing was written");

  CipherCtx c;
  int len = 0, final_len = 0;
  if (!c.ctx || EVP_EncryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) != 1 ||
      EVP_EncryptInit_ex(c.ctx, nullptr, nullptr, key.data(), nonce) != 1 ||
      EVP_EncryptUpdate(c.ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(kMagic.data()),
                        static_cast<int>(kMagic.size())) != 1 ||
      EVP_EncryptUpdate(c.ctx, cipher, &len, reinterpret_cast<const unsigned char*>(plain.data()),
                        static_cast<int>(plain.size())) != 1 ||
      EVP_EncryptFinal_ex(c.ctx, cipher + len, &final_len) != 1 ||
      static_cast<std::size_t>(len + final_len) != plain.size() ||
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_GET_TAG, kTagBytes, tag) != 1)
    throw Error("AES-256-GCM encryption of '" + file.string() + "' failed: " + openssl_error());
  util::write_atomic_with(file,
                         [&](const fs::path& tmp) { util::write_new_private_file(tmp, out); });
}

ShiftPlan read_one_time_key(const fs::path& file, const fs::path& key_file) {
  Key key = read_key_file(key_file);
  util::WipeOnExit<Key> wipe_key{key};
  std::string data = util::read_file(file);
  if (data.size() < kMagic.size() + kNonceBytes + kTagBytes ||
      std::string_view(data).substr(0, kMagic.size()) != kMagic)
    throw Error("'" + file.string() + "' is not a ppreid one-time key (it does not start with " +
                std::string(kMagic) + ")");
  const auto* nonce = reinterpret_cast<const unsigned char*>(data.data() + kMagic.size());
  const auto* cipher = nonce + kNonceBytes;
  const std::size_t cipher_len = data.size() - kMagic.size() - kNonceBytes - kTagBytes;
  std::array<unsigned char, kTagBytes> tag{};
  std::memcpy(tag.data(), cipher + cipher_len, kTagBytes);

  std::string plain(cipher_len, '\0');
  util::WipeOnExit<std::string> wipe_plain{plain};
  CipherCtx c;
  int len = 0, final_len = 0;
  if (!c.ctx || EVP_DecryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) != 1 ||
      EVP_DecryptInit_ex(c.ctx, nullptr, nullptr, key.data(), nonce) != 1)
    throw Error("AES-256-GCM setup for '" + file.string() + "' failed: " + openssl_error());
  if (EVP_DecryptUpdate(c.ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(kMagic.data()),
                        static_cast<int>(kMagic.size())) != 1 ||
      EVP_DecryptUpdate(c.ctx, reinterpret_cast<unsigned char*>(plain.data()), &len, cipher,
                        static_cast<int>(cipher_len)) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data()) != 1 ||
      EVP_DecryptFinal_ex(c.ctx, reinterpret_cast<unsigned char*>(plain.data()) + len,
                          &final_len) != 1)
    cannot_decrypt(file);
  nlohmann::json json = nlohmann::json::parse(plain, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded())
    throw Error("'" + file.string() + "' decrypted but does not hold a shift plan");
  return plan_from_json(json);
}

}  // namespace ppreid::deid::pis
