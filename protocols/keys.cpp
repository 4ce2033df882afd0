#include "protocols/keys.h"

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>
#include <zmq.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/util/atomic_file.h"
#include "core/util/error.h"
#include "core/util/private_file.h"
#include "protocols/text.h"
#include "protocols/transport_info.h"

namespace ppreid::proto {
namespace fs = std::filesystem;
namespace {

constexpr std::size_t kMaxKeyFileBytes = kZ85KeyChars + 2;  // "\r\n" at most
constexpr std::string_view kZ85Alphabet =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

// Whether `text` is 40 characters of canonical Z85 (decodes to 32 bytes and encodes back to the
// same text). Writes the bytes to `out` when it is.
bool decode_z85(std::string_view text, std::array<std::uint8_t, 32>& out) {
  if (text.size() != kZ85KeyChars) return false;
  if (text.find_first_not_of(kZ85Alphabet) != std::string_view::npos) return false;
  char buf[kZ85KeyChars + 1];
  std::memcpy(buf, text.data(), kZ85KeyChars);
  buf[kZ85KeyChars] = '\0';
  bool ok = zmq_z85_decode(out.data(), buf) != nullptr;
  char again[kZ85KeyChars + 1];
  ok = ok && zmq_z85_encode(again, out.data(), out.size()) != nullptr &&
       std::memcmp(again, buf, kZ85KeyChars) == 0;
  OPENSSL_cleanse(buf, sizeof buf);
  OPENSSL_cleanse(again, sizeof again);
  return ok;
}

// The file's text without one trailing "\n" or "\r\n".
std::string_view strip_newline(std::string_view text) {
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  return text;
}

}  // namespace

// ---- PublicKey ------------------------------------------------------------------------------

PublicKey PublicKey::from_z85(std::string_view z85) {
  std::array<std::uint8_t, 32> bytes{};
  if (!decode_z85(z85, bytes))
    throw Error("'" + printable_for_log(z85, 64) + "' is not a CURVE public key (40 Z85 characters)");
  PublicKey k;
  k.z85_ = std::string(z85);
  return k;
}

PublicKey PublicKey::from_bytes(const std::array<std::uint8_t, 32>& bytes) {
  char buf[kZ85KeyChars + 1];
  if (!zmq_z85_encode(buf, bytes.data(), bytes.size())) throw Error("Z85 encoding failed");
  PublicKey k;
  k.z85_.assign(buf, kZ85KeyChars);
  return k;
}

std::array<std::uint8_t, 32> PublicKey::bytes() const {
  std::array<std::uint8_t, 32> out{};
  decode_z85(z85_, out);  // valid by construction
  return out;
}

// ---- SecretKey ------------------------------------------------------------------------------

SecretKey SecretKey::from_z85(std::string_view z85) {
  std::array<std::uint8_t, 32> bytes{};
  const bool ok = decode_z85(z85, bytes);
  OPENSSL_cleanse(bytes.data(), bytes.size());
  if (!ok) throw Error("not a CURVE secret key (40 Z85 characters)");
  SecretKey k;
  std::memcpy(k.z85_.data(), z85.data(), kZ85KeyChars);
  return k;
}

SecretKey::SecretKey(SecretKey&& other) noexcept : z85_(other.z85_) {
  OPENSSL_cleanse(other.z85_.data(), other.z85_.size());
}

SecretKey& SecretKey::operator=(SecretKey&& other) noexcept {
  if (this != &other) {
    z85_ = other.z85_;
    OPENSSL_cleanse(other.z85_.data(), other.z85_.size());
  }
  return *this;
}

SecretKey::~SecretKey() { OPENSSL_cleanse(z85_.data(), z85_.size()); }

PublicKey SecretKey::public_key() const {
  require_curve();
  char pub[kZ85KeyChars + 1];
  if (zmq_curve_public(pub, z85_.data()) != 0)
    throw Error("cannot derive the public key of a secret key (zmq_curve_public failed)");
  return PublicKey::from_z85(std::string_view(pub, kZ85KeyChars));
}

// ---- key pairs and files --------------------------------------------------------------------

KeyPair generate_keypair() {
  require_curve();
  char pub[kZ85KeyChars + 1], sec[kZ85KeyChars + 1];
  if (zmq_curve_keypair(pub, sec) != 0) throw Error("zmq_curve_keypair failed");
  KeyPair pair{PublicKey::from_z85(std::string_view(pub, kZ85KeyChars)),
               SecretKey::from_z85(std::string_view(sec, kZ85KeyChars))};
  OPENSSL_cleanse(sec, sizeof sec);
  return pair;
}

KeyFiles key_files(const fs::path& prefix) {
  return {fs::path(prefix.string() + ".key"), fs::path(prefix.string() + ".pub")};
}

PublicKey write_keypair(const fs::path& prefix) {
  const KeyFiles files = key_files(prefix);
  for (const fs::path& f : {files.secret_file, files.public_file})
    if (fs::exists(fs::symlink_status(f)))
      throw Error("'" + f.string() + "' already exists; refusing to overwrite a key file: " +
                  "choose another --out prefix");
  KeyPair pair = generate_keypair();
  std::string secret_text = std::string(pair.secret_key.z85()) + "\n";
  util::WipeOnExit<std::string> wipe{secret_text};
  util::create_private_file(files.secret_file, secret_text, "secret key file");
  try {
    util::create_new_file(files.public_file, pair.public_key.z85() + "\n", "public key file",
                          0644);
  } catch (...) {
    // Leave no secret without its public half: the next keygen with this prefix must work.
    std::error_code ignored;
    fs::remove(files.secret_file, ignored);
    throw;
  }
  return pair.public_key;
}

PublicKey read_public_key(const fs::path& file) {
  std::error_code ec;
  const auto size = fs::file_size(file, ec);
  if (ec)
    throw Error("public key file '" + file.string() + "' cannot be read (" + ec.message() + ")");
  const std::string bad = "public key file '" + file.string() +
                          "' does not hold a CURVE public key (40 Z85 characters and a newline, "
                          "as written by `ppreid keygen`)";
  if (size > kMaxKeyFileBytes) throw Error(bad);
  const std::string text = util::read_file(file);
  try {
    return PublicKey::from_z85(strip_newline(text));
  } catch (const Error&) {
    throw Error(bad);
  }
}

KeyPair read_secret_key(const fs::path& file) {
  const std::string bad = "secret key file '" + file.string() +
                          "' does not hold a CURVE secret key (40 Z85 characters and a newline, "
                          "as written by `ppreid keygen`)";
  std::string text = util::read_private_file(file, kMaxKeyFileBytes, "secret key file",
                                             "create a key pair with `ppreid keygen --out PREFIX`",
                                             bad);
  util::WipeOnExit<std::string> wipe{text};
  std::optional<SecretKey> secret;
  try {
    secret.emplace(SecretKey::from_z85(strip_newline(text)));
  } catch (const Error&) {
    throw Error(bad);
  }
  PublicKey pub = secret->public_key();
  return KeyPair{std::move(pub), std::move(*secret)};
}

// ---- AllowList ------------------------------------------------------------------------------

AllowList AllowList::load(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw Error("allow-list directory '" + dir.string() +
                "' does not exist; put one SITE_ID.pub file per admitted site there");
  std::vector<fs::path> files;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    const fs::path& p = entry.path();
    if (p.extension() == ".key")
      spdlog::warn("allow-list directory '{}' holds the secret key file '{}': secret keys never "
                   "belong on the aggregator; move it away (only *.pub files are read)",
                   dir.string(), p.filename().string());
    if (p.extension() == ".pub" && entry.is_regular_file()) files.push_back(p);
  }
  std::sort(files.begin(), files.end());
  if (files.empty())
    throw Error("allow-list directory '" + dir.string() +
                "' has no *.pub files, so no site could connect; copy each site's PREFIX.pub "
                "there as SITE_ID.pub");
  AllowList list;
  list.dir_ = dir;
  std::map<PublicKey, fs::path> file_of;
  for (const fs::path& p : files) {
    const std::string site = p.stem().string();
    if (!is_valid_id(site))
      throw Error("allow-list file '" + p.string() + "': '" + printable_for_log(site) +
                  "' is not a valid site id (1.." + std::to_string(kMaxIdBytes) +
                  " characters of A-Z a-z 0-9 . _ -); rename the file to SITE_ID.pub");
    PublicKey key = read_public_key(p);
    auto [it, inserted] = file_of.emplace(key, p);
    if (!inserted)
      throw Error("allow-list files '" + it->second.string() + "' and '" + p.string() +
                  "' hold the same public key; one key cannot be two sites: remove one");
    list.sites_.emplace(std::move(key), site);
  }
  return list;
}

AllowList AllowList::from_map(std::map<PublicKey, std::string> sites) {
  for (const auto& [key, site] : sites)
    if (!is_valid_id(site))
      throw Error("allow-list: '" + printable_for_log(site) + "' is not a valid site id");
  AllowList list;
  list.sites_ = std::move(sites);
  return list;
}

std::optional<std::string> AllowList::site_for(const PublicKey& key) const {
  auto it = sites_.find(key);
  if (it == sites_.end()) return std::nullopt;
  return it->second;
}

}  // namespace ppreid::proto
