#pragma once

// A real Aggregator daemon on loopback (CURVE, ephemeral port) driven by scripted sites: real
// proto::Client connections whose answers a test chooses, so every number the daemon produces
// can be checked against a hand-made expectation.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "aggregator/aggregator.h"
#include "protocols/keys.h"
#include "protocols/torch_wire.h"
#include "protocols/transport.h"
#include "tests/support/temp_dir.h"

namespace ppreid::agg::daemon_tests {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

inline constexpr auto kWait = 20000ms;  // generous for busy CI; a pass never waits this long
inline constexpr std::chrono::seconds kJoinLimit{120};

// A site whose every message is scripted by the test. It heartbeats while it waits, like a real
// site, so the daemon does not count it as gone.
class ScriptedSite {
 public:
  ScriptedSite(const std::string& endpoint, const fs::path& keys, const std::string& id,
               const std::string& key_name = "") {
    proto::ClientOptions o;
    o.endpoint = endpoint;
    o.site_id = id;
    o.federation_id = "fed-test";
    o.secret_key_file = keys / ((key_name.empty() ? id : key_name) + ".key");
    o.server_public_key_file = keys / "aggregator.pub";
    o.socket.handshake_timeout = 5000ms;
    o.socket.send_timeout = 5000ms;
    o.socket.linger = 0ms;
    client_ = std::make_unique<proto::Client>(o);
  }

  void hello(std::uint64_t images = 100) {
    client_->send(0, proto::Hello{client_->options().site_id,
                                  proto::DatasetSummary{images, 10, 2, "none", {}}});
  }

  // The next message of `type`, answering nothing else; heartbeats every 200 ms meanwhile.
  std::optional<proto::Decoded> wait_for(proto::MessageType type,
                                         std::chrono::milliseconds timeout = kWait) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto got = client_->receive(200ms);
      if (got && got->envelope.type() == type) return got;
      if (got) other_.push_back(std::move(*got));
      try {
        client_->send(round_, proto::Heartbeat{"idle"});
      } catch (const proto::TransportError&) {
        // The aggregator went away (a test stops it); keep listening for what it sent.
      }
    }
    return std::nullopt;
  }

  // Waits for a Task and answers it with `weights(task_weights)`.
  template <class F>
  NamedTensors answer_task(std::uint64_t samples, F weights) {
    auto task = wait_for(proto::MessageType::kTask);
    EXPECT_TRUE(task) << client_->options().site_id << " got no Task";
    if (!task) return {};
    round_ = task->envelope.round;
    NamedTensors global = proto::from_wire(std::get<proto::Task>(task->envelope.payload).weights);
    NamedTensors mine = weights(global);
    proto::Update u;
    u.weights = proto::to_wire(mine);
    u.sample_count = samples;
    u.metrics = {{"loss", 1.0}};
    client_->send(round_, u);
    last_task_ = std::move(global);
    return mine;
  }

  // Sends another Update for the round of the last Task (a resend after a refusal).
  void send_update(const NamedTensors& weights, std::uint64_t samples) {
    proto::Update u;
    u.weights = proto::to_wire(weights);
    u.sample_count = samples;
    client_->send(round_, u);
  }
  // Waits for the aggregator's ErrorMessage and returns its text ("" when none came).
  std::string wait_for_error(std::chrono::milliseconds timeout = kWait) {
    auto e = wait_for(proto::MessageType::kError, timeout);
    return e ? std::get<proto::ErrorMessage>(e->envelope.payload).message : "";
  }

  proto::Client& client() { return *client_; }
  const NamedTensors& last_task() const { return last_task_; }
  // Messages wait_for() skipped (Errors, Byes...).
  const std::vector<proto::Decoded>& others() const { return other_; }
  void close() { client_.reset(); }

 private:
  std::unique_ptr<proto::Client> client_;
  std::uint64_t round_ = 0;
  NamedTensors last_task_;
  std::vector<proto::Decoded> other_;
};

class DaemonTest : public ::testing::Test {
 protected:
  DaemonTest() {
    fs::create_directories(dir_ / "keys" / "allow");
    aggregator_key_ = proto::write_keypair(dir_ / "keys" / "aggregator");
    for (const char* site : {"s1", "s2", "s3"}) {
      proto::write_keypair(dir_ / "keys" / site);
      fs::copy_file(dir_ / "keys" / (std::string(site) + ".pub"),
                    dir_ / "keys" / "allow" / (std::string(site) + ".pub"));
    }
    proto::write_keypair(dir_ / "keys" / "stranger");  // not in the allow-list
  }
  ~DaemonTest() override { stop(); }

  // A config on an ephemeral port; `extra` is appended (YAML), e.g. a strategy section.
  std::string yaml(int rounds, int min_sites, int min_updates, const std::string& extra = "") const {
    return "federation_id: fed-test\n"
           "listen: tcp://127.0.0.1:*\n"
           "security: {secret_key: keys/aggregator.key, allow_list: keys/allow}\n"
           "state_dir: state\n"
           "model: " + std::string(PPREID_SOURCE_DIR) + "/configs/train/tiny.yaml\n"
           "threads: 1\n"
           "rounds: " + std::to_string(rounds) + "\n" +
           "sites: {min_sites: " + std::to_string(min_sites) +
           ", min_updates: " + std::to_string(min_updates) +
           ", round_timeout: 30, site_timeout: 1.5}\n"
           "evaluation: {sites: false}\n" + extra;
  }

  AggregatorConfig config(const std::string& text) const {
    return parse_aggregator_config(text, "test.yaml", dir_.path());
  }

  // Builds the daemon here (its endpoint is then known) and runs it on a thread.
  void start(const std::string& text) {
    aggregator_ = std::make_unique<Aggregator>(config(text));
    finished_ = false;
    thread_ = std::thread([this] {
      try {
        outcome_ = aggregator_->run(stop_);
      } catch (const std::exception& e) {
        failure_ = e.what();
      }
      finished_ = true;
    });
  }
  // Waits for run() to return (it does once its rounds are complete). A daemon still running
  // after kJoinLimit (a round retried after the scripted sites stopped heartbeating waits for
  // sites forever) is stopped and the test fails, instead of hanging the suite.
  void join() {
    if (!thread_.joinable()) return;
    const auto deadline = std::chrono::steady_clock::now() + kJoinLimit;
    while (!finished_ && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(20ms);
    if (!finished_) {
      ADD_FAILURE() << "the daemon did not finish within " << kJoinLimit.count()
                    << " s; stopping it (see its log: a retried round?)";
      stop_ = true;
    }
    thread_.join();
  }
  void stop() {
    stop_ = true;
    join();
  }

  // A scripted site that said Hello declaring `images` training images.
  std::unique_ptr<ScriptedSite> site(const std::string& id, const std::string& key = "",
                                     std::uint64_t images = 100) {
    auto s = std::make_unique<ScriptedSite>(aggregator_->endpoint(), dir_ / "keys", id, key);
    s->hello(images);
    return s;
  }

  std::vector<nlohmann::json> metrics_lines() const {
    std::vector<nlohmann::json> out;
    std::ifstream in(dir_ / "state" / "metrics.jsonl");
    for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
    return out;
  }

  ::ppreid::testing::TempDir dir_;
  proto::PublicKey aggregator_key_ = proto::PublicKey::from_bytes({});
  std::unique_ptr<Aggregator> aggregator_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> finished_{false};
  std::optional<RunOutcome> outcome_;
  std::string failure_;
};

// `global` + a seeded perturbation of every floating-point tensor; counters + `count_step`.
inline NamedTensors perturbed(const NamedTensors& global, std::uint64_t seed, double scale,
                              std::int64_t count_step = 1) {
  torch::manual_seed(seed);
  NamedTensors out;
  for (const auto& [name, t] : global)
    out.emplace_back(name, t.is_floating_point() ? t + torch::randn_like(t) * scale
                                                 : t + count_step);
  return out;
}

}  // namespace ppreid::agg::daemon_tests
