#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace ppreid::proto {

// CURVE keys (Curve25519, as ZeroMQ uses them) in Z85 text: 40 characters for 32 bytes.
inline constexpr std::size_t kZ85KeyChars = 40;

class PublicKey {
 public:
  // Throws ppreid::Error unless `z85` is 40 characters of canonical Z85.
  static PublicKey from_z85(std::string_view z85);
  static PublicKey from_bytes(const std::array<std::uint8_t, 32>& bytes);

  const std::string& z85() const { return z85_; }
  std::array<std::uint8_t, 32> bytes() const;
  auto operator<=>(const PublicKey&) const = default;

 private:
  std::string z85_;
};

// A secret key: move-only, wiped from memory when destroyed, never printed. Error messages about
// secret key files never quote their contents.
class SecretKey {
 public:
  // Throws ppreid::Error (without the text) unless `z85` is 40 characters of canonical Z85.
  static SecretKey from_z85(std::string_view z85);
  SecretKey(SecretKey&& other) noexcept;
  SecretKey& operator=(SecretKey&& other) noexcept;
  SecretKey(const SecretKey&) = delete;
  SecretKey& operator=(const SecretKey&) = delete;
  ~SecretKey();

  // Only for ZMQ_CURVE_SECRETKEY.
  std::string_view z85() const { return {z85_.data(), kZ85KeyChars}; }
  // The matching public key (zmq_curve_public).
  PublicKey public_key() const;

 private:
  SecretKey() = default;
  std::array<char, kZ85KeyChars + 1> z85_{};
};

struct KeyPair {
  PublicKey public_key;
  SecretKey secret_key;
};

// A fresh key pair from zmq_curve_keypair (libsodium's CSPRNG). Throws when libzmq was built
// without CURVE.
KeyPair generate_keypair();

// PREFIX.key (secret) and PREFIX.pub (public) of `ppreid keygen --out PREFIX`.
struct KeyFiles {
  std::filesystem::path secret_file;
  std::filesystem::path public_file;
};
KeyFiles key_files(const std::filesystem::path& prefix);

// Writes a new key pair: PREFIX.key holds the secret key in Z85 and a newline, mode 0600 from its
// creation on; PREFIX.pub the public key in Z85 and a newline (mode 0644; the format of ZeroMQ's
// curve_keygen, readable by other ZeroMQ tools). Both are written atomically; an existing file of
// either name is never replaced. Returns the public key.
PublicKey write_keypair(const std::filesystem::path& prefix);

// Reads a .pub file (40 Z85 characters, optionally followed by a newline).
PublicKey read_public_key(const std::filesystem::path& file);

// Reads a .key file and derives its public key. Refuses a file that group or others may read or
// write ("chmod 600 FILE"), and anything but 40 Z85 characters and an optional newline.
KeyPair read_secret_key(const std::filesystem::path& file);

// The aggregator's allow-list: a directory of SITE_ID.pub files. A site's id is bound to its key:
// the ZAP handler admits a key only when it is listed here, and tells the aggregator which site
// it is (the file name stem), whatever the site later claims in its messages.
class AllowList {
 public:
  // Reads every *.pub file in `dir` (not recursively). Throws ppreid::Error for a missing
  // directory, a directory without *.pub files, a stem that is not a valid site id, a malformed
  // key, or one key listed under two site ids. A secret key file (*.key) found there is reported
  // with a warning: it does not belong on the aggregator.
  static AllowList load(const std::filesystem::path& dir);
  // For tests and tools: an allow-list from memory.
  static AllowList from_map(std::map<PublicKey, std::string> sites);

  // The site id the key belongs to, if it is listed.
  std::optional<std::string> site_for(const PublicKey& key) const;
  std::size_t size() const { return sites_.size(); }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
  std::map<PublicKey, std::string> sites_;
};

}  // namespace ppreid::proto
