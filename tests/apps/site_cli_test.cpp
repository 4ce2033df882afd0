// `ppreid site` as a user meets it: exit codes and messages for broken setups.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>

#include "core/util/atomic_file.h"
#include "protocols/keys.h"
#include "protocols/transport.h"
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

// The real binary against a scripted aggregator: a signal says Bye "shutdown: ..." and exits 0; a
// restarted site reuses its store and ends with the federation (Bye "finished").
TEST_F(SiteCliTest, SignalSaysByeAndFinishedFederationExitsZero) {
  using namespace std::chrono_literals;
  namespace fs = std::filesystem;
  fs::create_directories(dir_ / "allow");
  proto::write_keypair(dir_ / "aggregator");
  proto::write_keypair(dir_ / "site-1");
  fs::copy_file(dir_ / "site-1.pub", dir_ / "allow" / "site-1.pub");
  proto::ServerOptions o;
  o.federation_id = "fed";
  o.secret_key_file = dir_ / "aggregator.key";
  o.allow_list_dir = dir_ / "allow";
  o.socket.linger = 0ms;
  proto::Server server(o);

  std::string file = config("site-1.key");
  std::string text = util::read_file(file);
  text.replace(text.find("tcp://127.0.0.1:1"), 17, server.endpoint());
  text.replace(text.find("  raw: no-such-raw\n"), 19,
               "  raw: raw\n  synth:\n    profile: " PPREID_SOURCE_DIR "/configs/tiny.yaml\n"
               "    ids: 8\n");
  std::ofstream(file) << text;

  auto spawn = [&](const std::string& log) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    std::vector<std::string> args = {PPREID_BINARY, "site", "--config", file};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    EXPECT_EQ(posix_spawn(&pid, PPREID_BINARY, &actions, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    return pid;
  };
  auto expect = [&](proto::MessageType type) {
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < deadline)
      if (auto r = server.receive(200ms); r && r->envelope.type() == type) return *r;
    ADD_FAILURE() << "no " << proto::to_string(type);
    return proto::Received{};
  };
  auto exit_code = [](pid_t pid) {
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };

  pid_t first = spawn((dir_ / "first.log").string());
  expect(proto::MessageType::kHello);
  ::kill(first, SIGTERM);
  proto::Received bye = expect(proto::MessageType::kBye);
  EXPECT_THAT(std::get<proto::Bye>(bye.envelope.payload).reason, HasSubstr("shutdown: "));
  EXPECT_EQ(exit_code(first), 0) << util::read_file(dir_ / "first.log");

  pid_t second = spawn((dir_ / "second.log").string());
  proto::Received hello = expect(proto::MessageType::kHello);
  server.send(hello.peer, 0, proto::Bye{"finished: test over"});
  EXPECT_EQ(exit_code(second), 0) << util::read_file(dir_ / "second.log");
  EXPECT_THAT(util::read_file(dir_ / "second.log"), HasSubstr("not de-identifying again"));
}

}  // namespace
}  // namespace ppreid
