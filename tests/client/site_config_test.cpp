#include "client/site_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/errors.h"

namespace ppreid::client {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const fs::path kConfigs = fs::path(PPREID_SOURCE_DIR) / "configs";

// A minimal valid config with `extra` appended (a later duplicate key is a YAML error, so tests
// add sections the base lacks).
std::string base(const std::string& deid = "deid:\n  method: none\n") {
  return "site_id: site-9\n"
         "federation_id: fed\n"
         "aggregator:\n"
         "  endpoint: tcp://127.0.0.1:5555\n"
         "  public_key: keys/aggregator.pub\n"
         "secret_key: keys/site-9.key\n"
         "data:\n"
         "  raw: raw\n"
         "  store: store\n"
         "  state: /abs/state\n" +
         deid +
         "training:\n"
         "  config: train/tiny.yaml\n";
}

TEST(SiteConfigTest, TheShippedConfigResolvesPathsAgainstItsDirectory) {
  const SiteConfig c = load_site_config(kConfigs / "site.yaml");
  EXPECT_EQ(c.site_id, "site-1");
  EXPECT_EQ(c.endpoint, "tcp://127.0.0.1:5555");
  EXPECT_EQ(c.security, proto::Security::kCurve);
  EXPECT_EQ(c.server_public_key_file, (kConfigs / "../keys/aggregator.pub").lexically_normal());
  EXPECT_EQ(c.train_config, kConfigs / "train/tiny.yaml");
  EXPECT_EQ(c.deid.method, "dp");
  EXPECT_EQ(c.deid.epsilon, 1.0);
  EXPECT_EQ(c.deid.pixel_bits, 2);
  EXPECT_EQ(c.heartbeat_interval, std::chrono::milliseconds(2000));
  EXPECT_EQ(c.connect_give_up, std::chrono::milliseconds(0));
  EXPECT_FALSE(c.synth.has_value());
}

TEST(SiteConfigTest, TheDemoSitesDifferInIdSeedAndPaths) {
  for (int i = 1; i <= 3; ++i) {
    const std::string id = "site-" + std::to_string(i);
    const SiteConfig c = load_site_config(kConfigs / "demo" / (id + ".yaml"));
    EXPECT_EQ(c.site_id, id);
    EXPECT_EQ(c.federation_id, "demo");
    ASSERT_TRUE(c.synth.has_value());
    EXPECT_EQ(c.synth->seed, static_cast<std::uint64_t>(i));
    EXPECT_EQ(c.synth->profile, kConfigs / "tiny.yaml");
    EXPECT_EQ(c.secret_key_file, fs::path(PPREID_SOURCE_DIR) / "demo-run/keys" / (id + ".key"));
    EXPECT_EQ(c.store, fs::path(PPREID_SOURCE_DIR) / "demo-run" / id / "store");
  }
}

TEST(SiteConfigTest, RelativeAndAbsolutePaths) {
  const SiteConfig c = parse_site_config(base(), "/etc/ppreid/site.yaml");
  EXPECT_EQ(c.raw, fs::path("/etc/ppreid/raw"));
  EXPECT_EQ(c.state, fs::path("/abs/state"));
  EXPECT_EQ(c.secret_key_file, fs::path("/etc/ppreid/keys/site-9.key"));
}

TEST(SiteConfigTest, ErrorsNameFileKeyAndLine) {
  using testing::error_of;
  EXPECT_THAT(error_of([] { parse_site_config(base() + "runtime:\n  heartbeat_interval: 0\n", "s.yaml"); }),
              HasSubstr("s.yaml:16: key 'runtime.heartbeat_interval'"));
  EXPECT_THAT(error_of([] {
                parse_site_config(base("deid:\n  method: dp\n  kernel: S\n"), "s.yaml");
              }),
              HasSubstr("deid.kernel applies to deid.method blur only"));
  // A seed makes the store reproducible by anyone who knows it: only with the confirmation.
  EXPECT_THAT(error_of([] {
                parse_site_config(base("deid:\n  method: dp\n  seed: 7\n"), "s.yaml");
              }),
              HasSubstr("s.yaml:13: key 'deid.seed': makes the de-identification reproducible"));
  EXPECT_EQ(parse_site_config(base("deid:\n  method: dp\n  seed: 7\n"
                                   "  reproducible_for_experiments: true\n"),
                              "s.yaml")
                .deid.seed,
            7u);
  EXPECT_THAT(error_of([] { parse_site_config(base("deid:\n  method: fog\n"), "s.yaml"); }),
              HasSubstr("s.yaml:12: key 'deid.method': 'fog' is not one of"));
  EXPECT_THAT(error_of([] { parse_site_config(base("deid:\n  threads: 1\n"), "s.yaml"); }),
              HasSubstr("key 'deid.method': is required"));
  EXPECT_THAT(error_of([] { parse_site_config("site_id: a b\nfederation_id: f\n", "s.yaml"); }),
              HasSubstr("s.yaml:1: key 'site_id'"));
  std::string no_pin = base();
  no_pin.replace(no_pin.find("  public_key: keys/aggregator.pub\n"),
                 std::string("  public_key: keys/aggregator.pub\n").size(), "");
  EXPECT_THAT(error_of([&] { parse_site_config(no_pin, "s.yaml"); }),
              HasSubstr("key 'aggregator.public_key': is required with security: curve"));
  // Insecure sites need no keys.
  std::string insecure = no_pin;
  insecure.replace(insecure.find("aggregator:\n"), 12, "aggregator:\n  security: insecure\n");
  insecure.replace(insecure.find("secret_key: keys/site-9.key\n"), 28, "");
  EXPECT_EQ(parse_site_config(insecure, "s.yaml").security, proto::Security::kInsecure);
}

}  // namespace
}  // namespace ppreid::client
