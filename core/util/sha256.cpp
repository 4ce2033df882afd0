#include "core/util/sha256.h"

#include <openssl/evp.h>

#include <array>
#include <fstream>
#include <memory>
#include <vector>

#include "core/util/error.h"

namespace ppreid::util {
namespace {

// One digest in progress; `what` names the input in errors.
class Sha256 {
 public:
  explicit Sha256(const std::string& what) : what_(what) {
    if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1)
      throw Error("OpenSSL cannot start a SHA-256 digest of " + what_);
  }
  void add(const void* data, std::size_t size) {
    if (size > 0 && EVP_DigestUpdate(ctx_.get(), data, size) != 1)
      throw Error("OpenSSL SHA-256 update failed on " + what_);
  }
  std::string hex() {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int length = 0;
    if (EVP_DigestFinal_ex(ctx_.get(), digest.data(), &length) != 1)
      throw Error("OpenSSL SHA-256 final failed on " + what_);
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < length; ++i) {
      out += digits[digest[i] >> 4];
      out += digits[digest[i] & 15];
    }
    return out;
  }

 private:
  std::string what_;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx_{EVP_MD_CTX_new(), EVP_MD_CTX_free};
};

}  // namespace

std::string sha256_hex(std::string_view bytes) {
  Sha256 sha("an in-memory buffer");
  sha.add(bytes.data(), bytes.size());
  return sha.hex();
}

std::string sha256_hex_of_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error("cannot read '" + file.string() + "' to check it");
  Sha256 sha("'" + file.string() + "'");
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    if (in.gcount() > 0) sha.add(buffer.data(), static_cast<std::size_t>(in.gcount()));
  }
  if (in.bad()) throw Error("cannot read '" + file.string() + "' to check it");
  return sha.hex();
}

}  // namespace ppreid::util
