#include "core/data/image_name.h"

#include <gtest/gtest.h>

namespace ppreid::data {
namespace {

struct NameCase {
  Layout layout;
  std::string name;
  std::optional<ImageName> expected;
};

class ImageNameTest : public ::testing::TestWithParam<NameCase> {};

TEST_P(ImageNameTest, Parses) {
  const NameCase& c = GetParam();
  EXPECT_EQ(parse_image_name(c.layout, c.name), c.expected) << c.name;
}

constexpr Layout M = Layout::kMarket1501;
constexpr Layout D = Layout::kDukeMTMC;

INSTANTIATE_TEST_SUITE_P(
    Table, ImageNameTest,
    ::testing::Values(
        // Market-1501: good, junk, distractor, camera made 0-based, larger camera numbers.
        NameCase{M, "0002_c1s1_000451_03.jpg", ImageName{2, 0}},
        NameCase{M, "1501_c6s4_001877_02.jpg", ImageName{1501, 5}},
        NameCase{M, "-1_c3s2_000101_01.jpg", ImageName{-1, 2}},
        NameCase{M, "0000_c2s1_000626_01.jpg", ImageName{0, 1}},
        NameCase{M, "0007_c12s1_000001_01.png", ImageName{7, 11}},
        // Malformed Market names.
        NameCase{M, "0002_c0s1_000451_03.jpg", std::nullopt},   // camera 0 does not exist
        NameCase{M, "0002_c1s1_00451_03.jpg", std::nullopt},    // 5-digit frame
        NameCase{M, "0002_c1s1_000451_3.jpg", std::nullopt},    // 1-digit box
        NameCase{M, "0002_c1_000451_03.jpg", std::nullopt},     // no sequence
        NameCase{M, "0002_c1s1_000451_03.jpg.bak", std::nullopt},
        NameCase{M, "0002_c1s1_000451_03.gif", std::nullopt},
        NameCase{M, "abcd_c1s1_000451_03.jpg", std::nullopt},
        NameCase{M, "-2_c1s1_000451_03.jpg", std::nullopt},
        NameCase{M, "", std::nullopt},
        NameCase{M, "0005_c2_f0046985.jpg", std::nullopt},      // a Duke name
        // DukeMTMC-reID.
        NameCase{D, "0005_c2_f0046985.jpg", ImageName{5, 1}},
        NameCase{D, "7140_c8_f0201573.jpg", ImageName{7140, 7}},
        NameCase{D, "0005_c2_f046985.jpg", std::nullopt},       // 6-digit frame
        NameCase{D, "0005_c2s1_000451_03.jpg", std::nullopt}));  // a Market name

TEST(ImageName, MarketNameRoundTrips) {
  EXPECT_EQ(market_image_name(2, 0, 1, 451, 3), "0002_c1s1_000451_03.jpg");
  EXPECT_EQ(market_image_name(-1, 2, 2, 101, 1), "-1_c3s2_000101_01.jpg");
  for (int pid : {-1, 0, 1, 42, 9999})
    for (int cam : {0, 5, 11}) {
      auto parsed = parse_image_name(Layout::kMarket1501, market_image_name(pid, cam, 1, 7, 1));
      ASSERT_TRUE(parsed);
      EXPECT_EQ(parsed->pid, pid);
      EXPECT_EQ(parsed->camid, cam);
    }
}

}  // namespace
}  // namespace ppreid::data
