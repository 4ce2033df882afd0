// `ppreid site` as a user meets it: exit codes and messages for broken setups.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "protocols/keys.h"
#include "tests/support/run_cli.h"
#include "tests/support/temp_dir.h"

namespace ppreid {
namespace {

using ::testing::HasSubstr;

class SiteCliTest : public ::testing::Test {
 protected:
  // A complete config; `extra` lines are appended at the top level.
  std::string config(const std::string& secret_key, const std::string& extra = "") {
    const auto file = dir_ / "site.yaml";
    std::ofstream(file) << "site_id: site-1\n"
                           "federation_id: fed\n"
                           "aggregator:\n"
                           "  endpoint: tcp://127.0.0.1:1\n"
                           "  public_key: aggregator.pub\n"
                           "secret_key: " << secret_key << "\n"
                           "data:\n"
                           "  raw: no-such-raw\n"
                           "  store: store\n"
                           "  state: state\n"
                           "deid:\n"
                           "  method: none\n"
                           "training:\n"
                           "  config: " PPREID_SOURCE_DIR "/configs/train/tiny.yaml\n" << extra;
    return file.string();
  }
  testing::TempDir dir_;
};

TEST_F(SiteCliTest, MissingConfigIsAnErrorNamingTheFile) {
  auto r = testing::run_ppreid("site --config " + (dir_ / "nope.yaml").string());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("error: site config '" + (dir_ / "nope.yaml").string() +
                               "' does not exist"));
}

TEST_F(SiteCliTest, ConfigIsRequired) {
  auto r = testing::run_ppreid("site");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("--config"));
}

TEST_F(SiteCliTest, UnknownKeyNamesFileKeyAndLine) {
  auto r = testing::run_ppreid("site --config " + config("site-1.key", "bogus_key: 1\n"));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("site.yaml:15: unknown key 'bogus_key'"));
}

TEST_F(SiteCliTest, BadValueNamesTheDottedKey) {
  auto r = testing::run_ppreid("site --config " +
                               config("site-1.key", "runtime:\n  heartbeat_interval: soon\n"));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("key 'runtime.heartbeat_interval'"));
}

TEST_F(SiteCliTest, MissingSecretKeyFileFailsBeforeAnyWork) {
  proto::write_keypair(dir_ / "aggregator");
  auto r = testing::run_ppreid("site --config " + config("missing.key"));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("error: "));
  EXPECT_THAT(r.out, HasSubstr((dir_ / "missing.key").string()));
  EXPECT_THAT(r.out, HasSubstr("ppreid keygen"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "store")) << "nothing may be written before";
}

TEST_F(SiteCliTest, InsecureWarnsLoudly) {
  auto r = testing::run_ppreid("site --insecure --config " + config("site-1.key"));
  EXPECT_EQ(r.exit_code, 1) << r.out;  // no raw dataset and no synth section
  EXPECT_THAT(r.out, HasSubstr("WARNING: --insecure"));
  EXPECT_THAT(r.out, HasSubstr("raw dataset"));
}

}  // namespace
}  // namespace ppreid
