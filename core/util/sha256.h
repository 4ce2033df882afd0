#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace ppreid::util {

// Lower-case hex SHA-256 (OpenSSL EVP) of bytes, e.g. to fingerprint a public key.
std::string sha256_hex(std::string_view bytes);
// The same of a file's contents, streamed; ppreid::Error names an unreadable file.
std::string sha256_hex_of_file(const std::filesystem::path& file);

}  // namespace ppreid::util
