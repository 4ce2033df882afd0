#include "protocols/tensor_codec.h"

#include <openssl/evp.h>

#include <bit>
#include <limits>
#include <set>

#include "core/util/error.h"
#include "protocols/text.h"

namespace ppreid::proto {

static_assert(std::endian::native == std::endian::little,
              "the wire format is little-endian and ppreid copies tensor bytes as they are in "
              "memory: a big-endian host needs byte swapping in tensor_codec and torch_wire");

bool is_valid_dtype(std::uint8_t v) {
  return v >= static_cast<std::uint8_t>(DType::kF32) && v <= static_cast<std::uint8_t>(DType::kBool);
}

std::size_t element_size(DType dtype) {
  switch (dtype) {
    case DType::kF64:
    case DType::kI64:
      return 8;
    case DType::kF32:
    case DType::kI32:
      return 4;
    case DType::kF16:
    case DType::kBF16:
    case DType::kI16:
      return 2;
    case DType::kI8:
    case DType::kU8:
    case DType::kBool:
      return 1;
  }
  throw Error("element_size: dtype " + std::to_string(static_cast<int>(dtype)) + " is unknown");
}

const char* to_string(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "f32";
    case DType::kF64: return "f64";
    case DType::kF16: return "f16";
    case DType::kBF16: return "bf16";
    case DType::kI64: return "i64";
    case DType::kI32: return "i32";
    case DType::kI16: return "i16";
    case DType::kI8: return "i8";
    case DType::kU8: return "u8";
    case DType::kBool: return "bool";
  }
  return "unknown";
}

bool tensor_byte_count(std::span<const std::int64_t> shape, DType dtype, std::uint64_t limit,
                       std::uint64_t& bytes) {
  if (shape.size() > kMaxTensorDims) return false;
  std::uint64_t n = element_size(dtype);
  bool zero = false;
  for (std::int64_t d : shape) {
    if (d < 0) return false;
    if (d == 0) zero = true;
  }
  if (zero) {
    bytes = 0;
    return true;
  }
  for (std::int64_t d : shape) {
    const auto ud = static_cast<std::uint64_t>(d);
    if (n > limit / ud) return false;  // n * ud > limit, without overflowing
    n *= ud;
  }
  bytes = n;
  return true;
}

namespace {

std::string shape_text(std::span<const std::int64_t> shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

}  // namespace

void validate_tensors(const NamedWireTensors& tensors) {
  std::set<std::string_view> names;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const WireTensor& t = tensors[i];
    const std::string where = "tensor #" + std::to_string(i) + " '" + printable_for_log(t.name) + "'";
    if (t.name.empty() || t.name.size() > kMaxTensorNameBytes || !is_printable_text(t.name, kMaxTensorNameBytes))
      throw Error(where + ": a name must be 1.." + std::to_string(kMaxTensorNameBytes) +
                  " printable ASCII characters");
    if (!names.insert(t.name).second) throw Error(where + ": the name appears twice");
    if (!is_valid_dtype(static_cast<std::uint8_t>(t.dtype)))
      throw Error(where + ": unknown dtype " + std::to_string(static_cast<int>(t.dtype)));
    std::uint64_t bytes = 0;
    if (!tensor_byte_count(t.shape, t.dtype, std::numeric_limits<std::uint64_t>::max(), bytes))
      throw Error(where + ": shape " + shape_text(t.shape) + " is invalid (negative dimension, " +
                  "more than " + std::to_string(kMaxTensorDims) + " dimensions or too large)");
    if (bytes != t.data.size())
      throw Error(where + ": shape " + shape_text(t.shape) + " of " + to_string(t.dtype) +
                  " needs " + std::to_string(bytes) + " bytes but the tensor holds " +
                  std::to_string(t.data.size()));
  }
}

std::string to_hex(const Digest& digest) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * digest.size());
  for (std::uint8_t b : digest) out += {digits[b >> 4], digits[b & 15]};
  return out;
}

PayloadHasher::PayloadHasher(std::uint64_t tensor_count)
    : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
  if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1)
    throw Error("OpenSSL cannot set up SHA-256");
  add_bytes(&tensor_count, sizeof tensor_count);
}

void PayloadHasher::add_bytes(const void* data, std::size_t size) {
  if (size > 0 && EVP_DigestUpdate(ctx_.get(), data, size) != 1) throw Error("OpenSSL SHA-256 failed");
}

void PayloadHasher::add_manifest_entry(std::string_view name, DType dtype,
                                       std::span<const std::int64_t> shape) {
  // Lengths first, so that no two different manifests hash the same byte string.
  const std::uint64_t name_len = name.size(), ndim = shape.size();
  const auto code = static_cast<std::uint8_t>(dtype);
  add_bytes(&name_len, sizeof name_len);
  add_bytes(name.data(), name.size());
  add_bytes(&code, sizeof code);
  add_bytes(&ndim, sizeof ndim);
  add_bytes(shape.data(), shape.size_bytes());
}

Digest PayloadHasher::finish() {
  Digest out{};
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx_.get(), out.data(), &len) != 1 || len != out.size())
    throw Error("OpenSSL SHA-256 failed");
  return out;
}

Digest payload_sha256(const NamedWireTensors& tensors) {
  PayloadHasher h(tensors.size());
  for (const WireTensor& t : tensors) h.add_manifest_entry(t.name, t.dtype, t.shape);
  for (const WireTensor& t : tensors) h.add_bytes(t.data.data(), t.data.size());
  return h.finish();
}

}  // namespace ppreid::proto
