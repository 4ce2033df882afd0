#include "core/profile/profile.h"

#include <gtest/gtest.h>

#include "core/util/error.h"

namespace ppreid {
namespace {

TEST(Profile, ShippedProfilesLoad) {
  for (const char* name : {"tiny", "small", "paper"}) {
    Profile p = load_profile(std::string(PPREID_SOURCE_DIR) + "/configs/" + name + ".yaml");
    EXPECT_EQ(p.name, name);
    EXPECT_EQ(p.synth.height, p.transform.height) << name;
  }
  Profile tiny = load_profile(std::string(PPREID_SOURCE_DIR) + "/configs/tiny.yaml");
  EXPECT_EQ(tiny.transform.height, 64);
  EXPECT_EQ(tiny.transform.width, 32);
  EXPECT_EQ(tiny.runtime.threads, 2);
  EXPECT_EQ(tiny.loader.p, 4);
}

TEST(Profile, ValuesOverrideDefaults) {
  Profile p = parse_profile(
      "runtime:\n  seed: 42\nloader:\n  p: 8\n  k: 2\ntransform:\n  mean: [0.5, 0.5, 0.5]\n",
      "x.yaml");
  EXPECT_EQ(p.runtime.seed, 42u);
  EXPECT_EQ(p.synth.seed, 42u);
  EXPECT_EQ(p.loader.p, 8);
  EXPECT_EQ(p.loader.k, 2);
  EXPECT_FLOAT_EQ(p.transform.mean[1], 0.5f);
  EXPECT_EQ(p.transform.pad, 10);  // untouched default
}

struct ConfigErrorCase {
  std::string yaml;
  std::string expected;  // substring of the message: file, line and key
};

class ProfileErrorTest : public ::testing::TestWithParam<ConfigErrorCase> {};

TEST_P(ProfileErrorTest, NamesFileLineAndKey) {
  try {
    parse_profile(GetParam().yaml, "configs/bad.yaml");
    FAIL() << "accepted:\n" << GetParam().yaml;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(GetParam().expected), std::string::npos)
        << "message was: " << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, ProfileErrorTest,
    ::testing::Values(
        // Unknown key, nested and top level.
        ConfigErrorCase{"loader:\n  p: 4\n  kk: 4\n", "configs/bad.yaml:3: unknown key 'loader.kk'"},
        ConfigErrorCase{"name: x\nloder:\n  p: 4\n", "configs/bad.yaml:2: unknown key 'loder'"},
        // Wrong types.
        ConfigErrorCase{"loader:\n  p: four\n",
                        "configs/bad.yaml:2: key 'loader.p': expected an integer, got 'four'"},
        ConfigErrorCase{"loader:\n  p: 2.5\n", "key 'loader.p': expected an integer"},
        ConfigErrorCase{"loader: 3\n", "configs/bad.yaml:1: key 'loader': expected a mapping"},
        ConfigErrorCase{"transform:\n  flip_prob: [1, 2]\n",
                        "key 'transform.flip_prob': expected a number, got a list"},
        ConfigErrorCase{"transform:\n  mean: [0.1, 0.2]\n",
                        "configs/bad.yaml:2: key 'transform.mean': expected a list of 3"},
        // Out of range.
        ConfigErrorCase{"\n\ntransform:\n  flip_prob: 1.5\n",
                        "configs/bad.yaml:4: key 'transform.flip_prob': value 1.5 is out of range"},
        ConfigErrorCase{"synth:\n  ids: 0\n", "key 'synth.ids': value 0 is out of range"},
        ConfigErrorCase{"synth:\n  cameras: 3\n  municipalities: 2\n",
                        "key 'synth.cameras': each of the 2 municipalities"},
        ConfigErrorCase{"runtime:\n  threads: -1\n", "configs/bad.yaml:2: key 'runtime.threads'"},
        // Syntax.
        ConfigErrorCase{"loader:\n  p: [1,\n", "configs/bad.yaml:"},
        ConfigErrorCase{"- a\n- b\n", "the top level must be a mapping"}));

TEST(Profile, MissingFileIsAnError) {
  EXPECT_THROW(load_profile("/nonexistent/profile.yaml"), Error);
  EXPECT_THROW(find_profile("no-such-profile"), Error);
}

}  // namespace
}  // namespace ppreid
