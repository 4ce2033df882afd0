#include "core/deid/pis/one_time_key.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "core/util/atomic_file.h"
#include "core/util/error.h"

namespace ppreid::deid::pis {
namespace fs = std::filesystem;
namespace {

constexpr std::string_view kMagic = "PPREID-OTK1";
constexpr std::size_t kKeyBytes = 32;
constexpr std::size_t kNonceBytes = 12;
constexpr std::size_t kTagBytes = 16;
constexpr std::size_t kMaxKeyFileBytes = 2 * kKeyBytes + 2;  // hex, "\r\n" at most

using Key = std::array<std::uint8_t, kKeyBytes>;

std::string errno_text() { return std::strerror(errno); }

std::string openssl_error() {
  char buf[256];
  ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
  return buf;
}

// Wipes secrets when they go out of scope, whatever the path out.
template <typename T>
struct Wipe {
  T& secret;
  ~Wipe() { OPENSSL_cleanse(secret.data(), secret.size()); }
};

struct CipherCtx {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  ~CipherCtx() { EVP_CIPHER_CTX_free(ctx); }
};

// Creates `path` with mode 0600 (O_EXCL: never an existing file) and writes `contents` to it.
void write_new_private_file(const fs::path& path, std::string_view contents) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) throw Error("cannot create '" + path.string() + "': " + errno_text());
  // The umask can only remove bits; make sure nothing but the owner may read it either way.
  bool ok = ::fchmod(fd, 0600) == 0;
  std::size_t done = 0;
  while (ok && done < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      ok = false;
    else
      done += static_cast<std::size_t>(n);
  }
  std::string why = ok ? "" : errno_text();
  if (::close(fd) != 0 && ok) ok = false, why = errno_text();
  if (!ok) throw Error("cannot write '" + path.string() + "': " + why);
}

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
  if (fs::exists(fs::symlink_status(path)))
    throw Error("key file '" + path.string() +
                "' already exists; refusing to overwrite it (it may be the only key to a "
                "release): choose another path");
  fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  if (!fs::is_directory(dir))
    throw Error("cannot create key file '" + path.string() + "': directory '" + dir.string() +
                "' does not exist");
  Key key{};
  Wipe<Key> wipe_key{key};
  if (RAND_priv_bytes(key.data(), static_cast<int>(key.size())) != 1)
    throw Error("OpenSSL's CSPRNG failed (" + openssl_error() + "); no key file was written");
  std::string text = to_hex(key.data(), key.size()) + "\n";
  Wipe<std::string> wipe_text{text};

  // Write a private temporary file, then hard-link it to the final name: link() fails if the
  // name exists (no overwrite even in a race) and readers never see a partial key.
  std::uint8_t salt[6];
  if (RAND_bytes(salt, sizeof salt) != 1)
    throw Error("OpenSSL's CSPRNG failed (" + openssl_error() + "); no key file was written");
  fs::path tmp = dir / ("." + path.filename().string() + ".tmp." + to_hex(salt, sizeof salt));
  write_new_private_file(tmp, text);
  int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  bool synced = fd >= 0 && ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  int linked = synced ? ::link(tmp.c_str(), path.c_str()) : -1;
  int link_errno = errno;
  std::string why = synced ? errno_text() : "cannot sync it to disk";
  ::unlink(tmp.c_str());
  if (linked != 0)
    throw Error("cannot create key file '" + path.string() + "': " +
                (synced && link_errno == EEXIST
                     ? std::string("it already exists; refusing to overwrite it")
                     : why));
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

std::array<std::uint8_t, 32> read_key_file(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw Error("key file '" + path.string() + "' cannot be read (" + errno_text() +
                "); create one with `ppreid pis keygen --out " + path.string() + "`");
  if (!S_ISREG(st.st_mode)) throw Error("key file '" + path.string() + "' is not a regular file");
  if (st.st_mode & 077) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    throw Error("key file '" + path.string() + "' has mode " + mode +
                ": group or others may read or write it; run `chmod 600 " + path.string() +
                "` (and consider the key exposed if others could read it)");
  }
  const std::string bad = "key file '" + path.string() +
                          "' is not a ppreid key file (64 hex characters and a newline, as "
                          "written by `ppreid pis keygen`)";
  if (st.st_size > static_cast<off_t>(kMaxKeyFileBytes)) throw Error(bad);
  std::string text = util::read_file(path);
  Wipe<std::string> wipe_text{text};
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
  Wipe<Key> wipe_key{key};
  std::string plain = plan_to_json(plan).dump();
  Wipe<std::string> wipe_plain{plain};

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
  util::write_atomic_with(file, [&](const fs::path& tmp) { write_new_private_file(tmp, out); });
}

ShiftPlan read_one_time_key(const fs::path& file, const fs::path& key_file) {
  Key key = read_key_file(key_file);
  Wipe<Key> wipe_key{key};
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
  Wipe<std::string> wipe_plain{plain};
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
