#include "core/distributed/launch.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "tests/support/errors.h"

namespace ppreid::dist {
namespace {

using ::testing::HasSubstr;
using Env = std::map<std::string, std::string>;

std::function<const char*(const char*)> env_of(const Env& env) {
  return [&env](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
}

TEST(LaunchTest, RendezvousAddressesParse) {
  struct Case {
    std::string text, host;
    int port;
  };
  for (const Case& c : std::vector<Case>{{"127.0.0.1:29500", "127.0.0.1", 29500},
                                         {"node-0.city.example:1", "node-0.city.example", 1},
                                         {"[::1]:65535", "::1", 65535}}) {
    LaunchOptions o;
    parse_rendezvous(c.text, "--rendezvous", o);
    EXPECT_EQ(o.host, c.host) << c.text;
    EXPECT_EQ(o.port, c.port) << c.text;
  }
}

TEST(LaunchTest, BadRendezvousAddressesSayWhatToGive) {
  for (const std::string bad : {"host", ":29500", "host:", "host:0", "host:65536", "host:12a"}) {
    LaunchOptions o;
    EXPECT_THAT(testing::error_of([&] { parse_rendezvous(bad, "--rendezvous", o); }),
                HasSubstr("HOST:PORT"))
        << bad;
  }
}

TEST(LaunchTest, FlagsWinOverTheTorchrunEnvironment) {
  Env env{{"WORLD_SIZE", "4"}, {"RANK", "3"}, {"MASTER_ADDR", "10.0.0.5"}, {"MASTER_PORT", "1234"}};
  LaunchOptions from_env = resolve_launch({}, env_of(env));
  EXPECT_EQ(from_env.world_size, 4);
  EXPECT_EQ(from_env.rank, 3);
  EXPECT_EQ(from_env.host, "10.0.0.5");
  EXPECT_EQ(from_env.port, 1234);

  LaunchFlags flags;
  flags.world_size = 2;
  flags.rank = 1;
  flags.rendezvous = "127.0.0.1:29600";
  flags.timeout_seconds = 2.5;
  LaunchOptions o = resolve_launch(flags, env_of(env));
  EXPECT_EQ(o.world_size, 2);
  EXPECT_EQ(o.rank, 1);
  EXPECT_EQ(o.host, "127.0.0.1");
  EXPECT_EQ(o.port, 29600);
  EXPECT_EQ(o.timeout, std::chrono::milliseconds(2500));
  EXPECT_TRUE(o.distributed());
}

TEST(LaunchTest, NothingGivenIsOneProcess) {
  LaunchOptions o = resolve_launch({}, env_of({}));
  EXPECT_EQ(o.world_size, 1);
  EXPECT_EQ(o.rank, 0);
  EXPECT_FALSE(o.distributed());
}

TEST(LaunchTest, InconsistentLaunchesAreUsageErrors) {
  struct Case {
    LaunchFlags flags;
    Env env;
    std::string message;
  };
  auto flags = [](std::optional<int> w, std::optional<int> r, std::optional<std::string> rv) {
    LaunchFlags f;
    f.world_size = w;
    f.rank = r;
    f.rendezvous = rv;
    return f;
  };
  const std::vector<Case> cases = {
      {flags(0, 0, std::nullopt), {}, "--world-size must be at least 1"},
      {flags(2, 2, "h:1"), {}, "--rank 2 is outside 0..1"},
      {flags(2, -1, "h:1"), {}, "outside 0..1"},
      {flags(2, 0, std::nullopt), {}, "needs a rendezvous address"},
      {flags(std::nullopt, std::nullopt, std::nullopt), {{"WORLD_SIZE", "two"}}, "WORLD_SIZE='two'"},
      {flags(2, 0, std::nullopt), {{"MASTER_ADDR", "h"}}, "MASTER_ADDR and MASTER_PORT go together"},
  };
  for (const Case& c : cases) {
    bool usage = false;
    std::string message;
    try {
      resolve_launch(c.flags, env_of(c.env));
    } catch (const UsageError& e) {
      usage = true;
      message = e.what();
    }
    EXPECT_TRUE(usage) << c.message;
    EXPECT_THAT(message, HasSubstr(c.message));
  }
  LaunchFlags bad_timeout;
  bad_timeout.timeout_seconds = 0;
  EXPECT_THAT(testing::error_of([&] { resolve_launch(bad_timeout, env_of({})); }),
              HasSubstr("--dist-timeout"));
}

TEST(LaunchTest, BackendsResolveAndNcclNeedsItsBuild) {
  EXPECT_EQ(parse_backend("gloo", "--backend"), Backend::kGloo);
  EXPECT_EQ(parse_backend("auto", "--backend"), Backend::kAuto);
  EXPECT_THAT(testing::error_of([] { parse_backend("mpi", "--backend"); }),
              HasSubstr("use gloo, nccl or auto"));
  // On the CPU auto is always Gloo, with or without NCCL compiled in.
  EXPECT_EQ(resolve_backend(Backend::kAuto, false), Backend::kGloo);
  EXPECT_EQ(resolve_backend(Backend::kGloo, false), Backend::kGloo);
  if (!nccl_compiled()) {
    EXPECT_EQ(resolve_backend(Backend::kAuto, true), Backend::kGloo);
    EXPECT_THAT(testing::error_of([] { resolve_backend(Backend::kNccl, true); }),
                HasSubstr("-DPPREID_WITH_NCCL=ON"));
  }
  EXPECT_THAT(testing::error_of([] { resolve_backend(Backend::kNccl, false); }),
              HasSubstr("nccl"));
}

}  // namespace
}  // namespace ppreid::dist
