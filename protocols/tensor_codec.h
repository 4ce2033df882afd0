#pragma once

#include <openssl/types.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ppreid::proto {

// Element types on the wire. The numbers are the wire values: never renumber, only append.
enum class DType : std::uint8_t {
  kF32 = 1,
  kF64 = 2,
  kF16 = 3,
  kBF16 = 4,
  kI64 = 5,
  kI32 = 6,
  kI16 = 7,
  kI8 = 8,
  kU8 = 9,
  kBool = 10,
};

bool is_valid_dtype(std::uint8_t wire_value);
std::size_t element_size(DType dtype);
const char* to_string(DType dtype);  // "f32", "bf16", ...

// One named tensor as it travels: shape, element type and the raw little-endian bytes, row-major
// and contiguous. data.size() must equal numel(shape) * element_size(dtype).
struct WireTensor {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<std::int64_t> shape;
  std::vector<std::uint8_t> data;

  bool operator==(const WireTensor&) const = default;
};

// Tensors in a fixed order (a state_dict's order); names are unique.
using NamedWireTensors = std::vector<WireTensor>;

inline constexpr std::size_t kMaxTensorDims = 32;
inline constexpr std::size_t kMaxTensorNameBytes = 512;

// Elements and bytes a shape holds, with overflow checks: false when a dimension is negative,
// there are more than kMaxTensorDims of them, or numel * element_size exceeds `limit` bytes.
bool tensor_byte_count(std::span<const std::int64_t> shape, DType dtype, std::uint64_t limit,
                       std::uint64_t& bytes);

// Checks what the encoder needs: a valid name (1..kMaxTensorNameBytes printable ASCII), unique
// names, a known dtype, and data.size() matching the shape. Throws ppreid::Error naming the
// tensor and the sizes.
void validate_tensors(const NamedWireTensors& tensors);

// SHA-256 digest of a model payload.
using Digest = std::array<std::uint8_t, 32>;
std::string to_hex(const Digest& digest);

// Streaming SHA-256 (OpenSSL EVP) of a model payload: the tensor count, the manifest (every
// tensor's name, dtype and shape, in order) then the raw bytes of all tensors in order. Encoder and decoder feed it
// the same way, so names, shapes and bytes are all covered.
class PayloadHasher {
 public:
  explicit PayloadHasher(std::uint64_t tensor_count);

  void add_manifest_entry(std::string_view name, DType dtype, std::span<const std::int64_t> shape);
  void add_bytes(const void* data, std::size_t size);
  Digest finish();

 private:
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx_;
};

// The digest encode() puts in the envelope for these tensors.
Digest payload_sha256(const NamedWireTensors& tensors);

}  // namespace ppreid::proto
