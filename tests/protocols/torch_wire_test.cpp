#include "protocols/torch_wire.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tests/support/errors.h"

namespace ppreid::proto {
namespace {

using ::testing::HasSubstr;

TEST(TorchWireTest, EveryDtypeRoundTripsBitForBit) {
  torch::manual_seed(3);
  NamedTensors in;
  for (auto type : {torch::kFloat32, torch::kFloat64, torch::kFloat16, torch::kBFloat16})
    in.emplace_back(std::string("f") + c10::toString(type), torch::randn({3, 5}).to(type));
  for (auto type : {torch::kInt64, torch::kInt32, torch::kInt16, torch::kInt8, torch::kUInt8})
    in.emplace_back(std::string("i") + c10::toString(type),
                    torch::randint(-100, 100, {4, 2}).to(type));
  in.emplace_back("bool", torch::rand({7}) > 0.5);
  in.emplace_back("scalar", torch::tensor(2.5));
  in.emplace_back("empty", torch::zeros({0, 3}));
  const NamedWireTensors wire = to_wire(in);
  ASSERT_EQ(wire.size(), in.size());
  EXPECT_EQ(wire[0].dtype, DType::kF32);
  EXPECT_EQ(wire[0].shape, (std::vector<std::int64_t>{3, 5}));
  EXPECT_EQ(wire[0].data.size(), 60u);
  const NamedTensors out = from_wire(wire);
  ASSERT_EQ(out.size(), in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    SCOPED_TRACE(in[i].first);
    EXPECT_EQ(out[i].first, in[i].first);
    EXPECT_EQ(out[i].second.scalar_type(), in[i].second.scalar_type());
    EXPECT_EQ(out[i].second.sizes(), in[i].second.sizes());
    EXPECT_TRUE(torch::equal(out[i].second, in[i].second));
  }
}

TEST(TorchWireTest, NonContiguousTensorsAreCopiedInLogicalOrder) {
  const torch::Tensor base = torch::arange(12, torch::kFloat32).reshape({3, 4});
  const torch::Tensor t = base.t();  // a transposed view
  ASSERT_FALSE(t.is_contiguous());
  const NamedTensors out = from_wire(to_wire({{"t", t}}));
  EXPECT_TRUE(torch::equal(out[0].second, t));
  // The result owns its bytes: changing the input later does not change it.
  base.zero_();
  EXPECT_FALSE(torch::equal(out[0].second, t));
}

TEST(TorchWireTest, UnsupportedAndInvalidInputsAreErrors) {
  EXPECT_THAT(testing::error_of([] {
                to_wire({{"z", torch::zeros({2}, torch::kComplexFloat)}});
              }),
              HasSubstr("tensor 'z': tensor dtype ComplexFloat has no wire encoding"));
  EXPECT_THAT(testing::error_of([] { to_wire({{"u", torch::Tensor()}}); }),
              HasSubstr("tensor 'u' is undefined"));
  NamedWireTensors bad = to_wire({{"w", torch::ones({2, 2})}});
  bad[0].data.resize(12);
  EXPECT_THAT(testing::error_of([&] { from_wire(bad); }), HasSubstr("needs 16 bytes"));
}

}  // namespace
}  // namespace ppreid::proto
