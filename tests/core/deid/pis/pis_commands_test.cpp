// `ppreid pis keygen` and `pis reveal` through CLI11, in process.
#include "core/deid/pis/pis_commands.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <iostream>
#include <sstream>

#include "core/deid/pis/one_time_key.h"
#include "core/util/atomic_file.h"
#include "core/util/error.h"
#include "tests/core/deid/pis/pis_test_data.h"
#include "tests/support/temp_dir.h"

namespace ppreid::deid::pis {
namespace {

// Parses `args` as a `ppreid` command line (without the program name) and returns stdout.
std::string run_cli(const std::string& args) {
  CLI::App app{"test", "ppreid"};
  app.require_subcommand(1);
  CLI::App* group = register_pis_commands(app);
  EXPECT_EQ(group->get_name(), "pis");
  std::ostringstream captured;
  std::streambuf* old = std::cout.rdbuf(captured.rdbuf());
  try {
    app.parse(args, false);
  } catch (...) {
    std::cout.rdbuf(old);
    throw;
  }
  std::cout.rdbuf(old);
  return captured.str();
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
  EXPECT_THROW(run_cli("pis reveal --one-time-key " + otk), CLI::RequiredError);
  EXPECT_THROW(run_cli("pis keygen"), CLI::RequiredError);
  EXPECT_THROW(run_cli("pis"), CLI::RequiredError);  // a pis subcommand is required
}

}  // namespace
}  // namespace ppreid::deid::pis
