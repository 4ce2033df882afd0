// `ppreid aggregator` as an operator meets it: exit codes and messages for bad starts.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/util/atomic_file.h"
#include "protocols/keys.h"
#include "tests/support/run_cli.h"
#include "tests/support/temp_dir.h"

namespace ppreid {
namespace {

using ::testing::HasSubstr;

class AggregatorCliTest : public ::testing::Test {
 protected:
  // A config in the temp dir; `security` is its security section.
  std::string write_config(const std::string& security) {
    const std::string file = (dir_ / "agg.yaml").string();
    util::write_file_atomic(file, "federation_id: cli\nlisten: tcp://127.0.0.1:*\n" + security +
                                      "state_dir: state\nmodel: " PPREID_SOURCE_DIR
                                      "/configs/train/tiny.yaml\nrounds: 1\n");
    return file;
  }
  testing::TempDir dir_;
};

TEST_F(AggregatorCliTest, NeedsAConfig) {
  auto r = testing::run_ppreid("aggregator");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("--config is required"));
  r = testing::run_ppreid("aggregator --config " + (dir_ / "missing.yaml").string());
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("missing.yaml"));
}

TEST_F(AggregatorCliTest, InsecureModeMustBeConfirmedOnTheCommandLine) {
  const std::string file = write_config("security: {mode: insecure}\n");
  auto r = testing::run_ppreid("aggregator --config " + file);
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("--insecure"));
}

TEST_F(AggregatorCliTest, MissingKeysStopTheStartWithTheKeyNamed) {
  auto r = testing::run_ppreid("aggregator --config " + write_config(""));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("security.secret_key"));
  EXPECT_THAT(r.out, HasSubstr("ppreid keygen"));
  const std::string file = write_config(
      "security: {secret_key: nokey.key, allow_list: allow}\n");
  r = testing::run_ppreid("aggregator --config " + file);
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("nokey.key"));
}

TEST_F(AggregatorCliTest, StatusOfAStateDirectoryWithoutADaemon) {
  auto r = testing::run_ppreid("aggregator status --state-dir " + dir_.path().string());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("no aggregator has run"));
  r = testing::run_ppreid("aggregator status");
  EXPECT_EQ(r.exit_code, 2) << r.out;
}

}  // namespace
}  // namespace ppreid
