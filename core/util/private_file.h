#pragma once

#include <openssl/crypto.h>

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

namespace ppreid::util {

// Files that hold secrets (key files): created with mode 0600 from the first byte on, never
// replacing an existing file, and refused on reading when group or others may read them.

// Wipes a secret (std::string, std::array...) when it goes out of scope, whatever the path out.
template <typename T>
struct WipeOnExit {
  T& secret;
  ~WipeOnExit() { OPENSSL_cleanse(secret.data(), secret.size()); }
};

// Creates `path` with `mode` (O_EXCL: never an existing file; fchmod, so the umask cannot widen
// or narrow it) and writes `contents` to it. No fsync and no rename: for a temporary file (see
// write_atomic_with) or a caller that does its own.
void write_new_file(const std::filesystem::path& path, std::string_view contents, unsigned mode);
inline void write_new_private_file(const std::filesystem::path& path, std::string_view contents) {
  write_new_file(path, contents, 0600);
}

// Creates `path` as a new file with `mode` holding `contents`, atomically: written to a
// temporary file with that mode in the same directory, fsynced, then hard-linked to `path`
// (link() fails if the name exists, so nothing is ever overwritten, even in a race) and the
// directory fsynced. `what` names the file in messages ("key file", "public key file"). Refuses
// an existing path (a dangling symlink included) and a missing directory.
void create_new_file(const std::filesystem::path& path, std::string_view contents,
                     std::string_view what, unsigned mode);
inline void create_private_file(const std::filesystem::path& path, std::string_view contents,
                                std::string_view what) {
  create_new_file(path, contents, what, 0600);
}

// Reads a private file of at most `max_bytes`. Throws ppreid::Error, never quoting the contents:
// - missing or unreadable: "<what> 'P' cannot be read (<reason>); <missing_hint>"
// - not a regular file: "<what> 'P' is not a regular file"
// - group or others may read or write it: "... has mode 0644: ...; run `chmod 600 P` ..."
// - longer than max_bytes: `too_long` as the whole message.
std::string read_private_file(const std::filesystem::path& path, std::size_t max_bytes,
                              std::string_view what, std::string_view missing_hint,
                              const std::string& too_long);

}  // namespace ppreid::util
