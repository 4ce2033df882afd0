#include "protocols/tensor_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/protocols/protocol_test_util.h"
#include "tests/support/errors.h"

namespace ppreid::proto {
namespace {

using ::testing::HasSubstr;

TEST(TensorCodecTest, ElementSizesAndNames) {
  EXPECT_EQ(element_size(DType::kF32), 4u);
  EXPECT_EQ(element_size(DType::kF64), 8u);
  EXPECT_EQ(element_size(DType::kBF16), 2u);
  EXPECT_EQ(element_size(DType::kBool), 1u);
  EXPECT_STREQ(to_string(DType::kBF16), "bf16");
  EXPECT_FALSE(is_valid_dtype(0));
  EXPECT_TRUE(is_valid_dtype(10));
  EXPECT_FALSE(is_valid_dtype(11));
}

TEST(TensorCodecTest, ByteCountChecksOverflowAndLimits) {
  std::uint64_t bytes = 0;
  const std::vector<std::int64_t> scalar{}, zero{0, 1 << 30}, big{1 << 30, 1 << 30, 1 << 30};
  EXPECT_TRUE(tensor_byte_count(scalar, DType::kF64, 100, bytes));
  EXPECT_EQ(bytes, 8u);
  EXPECT_TRUE(tensor_byte_count(zero, DType::kF32, 0, bytes));
  EXPECT_EQ(bytes, 0u);
  EXPECT_FALSE(tensor_byte_count(big, DType::kF32, UINT64_MAX, bytes));  // 2^92 bytes
  const std::vector<std::int64_t> four{4};
  EXPECT_TRUE(tensor_byte_count(four, DType::kF32, 16, bytes));
  EXPECT_FALSE(tensor_byte_count(four, DType::kF32, 15, bytes));
  const std::vector<std::int64_t> negative{2, -1};
  EXPECT_FALSE(tensor_byte_count(negative, DType::kU8, 100, bytes));
  const std::vector<std::int64_t> too_many(kMaxTensorDims + 1, 1);
  EXPECT_FALSE(tensor_byte_count(too_many, DType::kU8, 100, bytes));
}

TEST(TensorCodecTest, ValidateNamesTheBadTensor) {
  NamedWireTensors t = testing::sample_tensors();
  EXPECT_NO_THROW(validate_tensors(t));
  t[2].name = "bad\tname";
  EXPECT_THAT(testing::error_of([&] { validate_tensors(t); }),
              HasSubstr("tensor #2 'bad?name': a name must be 1..512 printable"));
  t = testing::sample_tensors();
  t[1].shape = {2};
  EXPECT_THAT(testing::error_of([&] { validate_tensors(t); }),
              HasSubstr("shape [2] of i64 needs 16 bytes but the tensor holds 8"));
}

TEST(TensorCodecTest, DigestCoversNamesShapesTypesAndBytes) {
  const NamedWireTensors base = testing::sample_tensors();
  const Digest d = payload_sha256(base);
  EXPECT_EQ(d, payload_sha256(base));
  EXPECT_EQ(to_hex(d).size(), 64u);
  auto changed = base;
  changed[0].name += "x";
  EXPECT_NE(payload_sha256(changed), d);
  changed = base;
  changed[0].shape = {8, 3, 9};  // same byte count
  EXPECT_NE(payload_sha256(changed), d);
  changed = base;
  changed[0].dtype = DType::kI32;
  EXPECT_NE(payload_sha256(changed), d);
  changed = base;
  changed[5].data[3] ^= 1;
  EXPECT_NE(payload_sha256(changed), d);
  changed = base;
  changed.pop_back();
  EXPECT_NE(payload_sha256(changed), d);
}

}  // namespace
}  // namespace ppreid::proto
