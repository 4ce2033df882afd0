// `ppreid pis keygen` and `pis reveal`, through the real binary.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <iostream>
#include <sstream>

#include "core/deid/pis/one_time_key.h"
#include "core/util/atomic_file.h"
#include "core/util/error.h"
#include "tests/core/deid/pis/pis_test_data.h"
#include "tests/support/run_cli.h"
#include "tests/support/temp_dir.h"

namespace ppreid::deid::pis {
namespace {

using ::testing::HasSubstr;

// Runs the real binary with `args` and returns its stdout and stderr; a non-zero exit becomes
// the exception the in-process command would have thrown (Error for exit 1, UsageError for
// exit 2), with the binary's message, so the assertions below read as they did in process.
std::string run_cli(const std::string& args) {
  const testing::RunResult r = testing::run_ppreid(args);
  if (r.exit_code == 1) throw Error(r.out);
  if (r.exit_code == 2) throw UsageError(r.out);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  return r.out;
}

// The message of the usage error (exit 2) that `args` ends with, or a marker when it ends otherwise.
std::string usage_error_of(const std::string& args) {
  try {
    run_cli(args);
  } catch (const UsageError& e) {
    return e.what();
  } catch (const Error& e) {
    return std::string("(exit 1, not a usage error) ") + e.what();
  }
  return "(no usage error)";
}

std::string pid4(int pid) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04d", pid);
  return buf;
}

TEST(PisCommands, KeygenThenRevealPrintsTheMapping) {
  testing::TempDir dir;
  const std::string key = (dir / "owner.key").string(), otk = (dir / "release.otk").string();
  std::string out = run_cli("pis keygen --out " + key);
  EXPECT_NE(out.find("mode 0600"), std::string::npos) << out;
  EXPECT_EQ(out.find(util::read_file(key).substr(0, 64)), std::string::npos);  // never printed
  struct stat st {};
  ASSERT_EQ(::stat(key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_THROW(run_cli("pis keygen --out " + key), Error);

  PartnerOptions o;
  o.seed = 5;
  ShiftPlan plan = plan_identity_shift(testdata::market_like(), nullptr, o, make_lambdas());
  write_one_time_key(otk, plan, key);

  auto j = nlohmann::json::parse(
      run_cli("pis reveal --one-time-key " + otk + " --key-file " + key + " --json"));
  ASSERT_EQ(j["identities"].size(), plan.by_pid.size());
  int previous = 0;
  for (const auto& row : j["identities"]) {
    const int new_pid = row["new_pid"], original = row["original_pid"];
    EXPECT_GT(new_pid, previous);  // sorted by the label a re-identification starts from
    previous = new_pid;
    const IdentityShift& s = plan.by_pid.at(original);
    EXPECT_EQ(s.new_pid, new_pid);
    ASSERT_EQ(row["partners"].size(), 1u);
    EXPECT_EQ(row["partners"][0]["pid"], s.partners[0].pid);
    EXPECT_EQ(row["partners"][0]["path"], s.partners[0].path);
  }
  EXPECT_EQ(j["distractors"].size(), plan.distractors.size());
  EXPECT_EQ(j["lambdas"], nlohmann::json({0.5, 0.5}));
  EXPECT_EQ(j["cross_dataset"], false);

  std::string table = run_cli("pis reveal --one-time-key " + otk + " --key-file " + key);
  EXPECT_NE(table.find("new_pid  original_pid  partner_pids"), std::string::npos) << table;
  for (const auto& [pid, s] : plan.by_pid) {
    std::string line =
        pid4(s.new_pid) + "     " + pid4(pid) + "          " + pid4(s.partners[0].pid);
    EXPECT_NE(table.find(line + "\n"), std::string::npos) << line << "\n" << table;
  }
  EXPECT_NE(table.find("2 distractor images"), std::string::npos) << table;
}

TEST(PisCommands, RevealWithTheWrongKeyOrMissingFlagsFails) {
  testing::TempDir dir;
  const std::string key = (dir / "a.key").string(), other = (dir / "b.key").string();
  const std::string otk = (dir / "x.otk").string();
  run_cli("pis keygen --out " + key);
  run_cli("pis keygen --out " + other);
  PartnerOptions o;
  o.seed = 1;
  write_one_time_key(otk, plan_identity_shift(testdata::market_like(), nullptr, o, make_lambdas()),
                     key);
  try {
    run_cli("pis reveal --one-time-key " + otk + " --key-file " + other);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("wrong key file or the file was modified"),
              std::string::npos)
        << e.what();
  }
  // Missing required flags and a missing pis subcommand are usage errors (exit 2) naming them.
  EXPECT_THAT(usage_error_of("pis reveal --one-time-key " + otk), HasSubstr("--key-file is required"));
  EXPECT_THAT(usage_error_of("pis keygen"), HasSubstr("--out is required"));
  EXPECT_THAT(usage_error_of("pis"), HasSubstr("A subcommand is required"));
  // The group lists its subcommands.
  const std::string help = run_cli("pis --help");
  EXPECT_THAT(help, HasSubstr("keygen"));
  EXPECT_THAT(help, HasSubstr("reveal"));
  EXPECT_THAT(help, HasSubstr("train"));
}

}  // namespace
}  // namespace ppreid::deid::pis
