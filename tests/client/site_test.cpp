// A real Site in a thread against a scripted aggregator (proto::Server) over CURVE on loopback.
#include "client/site.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "client/site_config.h"
#include "core/data/synth/generator.h"
#include "core/reid/model.h"
#include "core/util/atomic_file.h"
#include "core/reid/train_config.h"
#include "protocols/keys.h"
#include "protocols/torch_wire.h"
#include "protocols/transport.h"
#include "tests/support/errors.h"
#include "tests/support/ranks.h"
#include "tests/support/synth.h"
#include "tests/support/temp_dir.h"

namespace ppreid::client {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;

constexpr auto kWait = 60s;  // generous for a busy 2-core machine; a pass never waits this long

// The site under test, running Site::run in its own thread.
class RunningSite {
 public:
  // `launch`: one rank of a data-parallel site (its Communicator is made on the site's thread,
  // since joining blocks until every rank has).
  explicit RunningSite(SiteConfig config, std::optional<dist::LaunchOptions> launch = {},
                       SiteHooks hooks = {})
      : site_(std::move(config), std::move(hooks)) {
    thread_ = std::thread([this, launch] {
      try {
        if (launch) {
          comm_ = std::make_unique<dist::Communicator>(*launch);
          site_.set_data_parallel(comm_.get());
        }
        exit_ = site_.run(stop_);
      } catch (const Error& e) {
        error_ = e.what();
      }
      done_ = true;
    });
  }
  ~RunningSite() {
    stop_ = true;
    join();
  }
  void stop() { stop_ = true; }
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  bool done() const { return done_; }
  const std::optional<SiteExit>& exit() const { return exit_; }
  const std::string& error() const { return error_; }
  const Site& site() const { return site_; }

 private:
  std::unique_ptr<dist::Communicator> comm_;  // outlives site_ (declared first)
  Site site_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> done_{false};
  std::optional<SiteExit> exit_;
  std::string error_;
  std::thread thread_;
};

class SiteTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    raw_dir_ = new testing::TempDir();
    data::synth::generate(testing::small_synth(16, 2, 8, 64, 32, 21), *raw_dir_ / "raw");
  }
  static void TearDownTestSuite() { delete raw_dir_; }

  SiteTest() {
    fs::create_directories(dir_ / "allow");
    proto::write_keypair(dir_ / "aggregator");
    proto::write_keypair(dir_ / "impostor");
    proto::write_keypair(dir_ / "site-1");
    fs::copy_file(dir_ / "site-1.pub", dir_ / "allow" / "site-1.pub");
  }

  std::unique_ptr<proto::Server> start_server() {
    proto::ServerOptions o;
    o.endpoint = "tcp://127.0.0.1:*";
    o.federation_id = "fed-test";
    o.secret_key_file = dir_ / "aggregator.key";
    o.allow_list_dir = dir_ / "allow";
    o.socket.handshake_timeout = 2000ms;
    o.socket.linger = 0ms;
    return std::make_unique<proto::Server>(o);
  }

  // A site config as a user writes it; `deid` and `extra` are YAML lines.
  fs::path write_config(const std::string& endpoint, const std::string& deid,
                        const std::string& pinned = "aggregator.pub",
                        const std::string& runtime = "") {
    const fs::path file = dir_ / "site.yaml";
    std::ofstream(file) << "site_id: site-1\n"
                           "federation_id: fed-test\n"
                           "aggregator:\n"
                           "  endpoint: " << endpoint << "\n"
                           "  public_key: " << pinned << "\n"
                           "  handshake_timeout: 1.5\n"
                           "secret_key: site-1.key\n"
                           "data:\n"
                           "  raw: " << (*raw_dir_ / "raw").string() << "\n"
                           "  store: store\n"
                           "  state: state\n"
                           "deid:\n" << deid <<
                           "training:\n"
                           "  config: " PPREID_SOURCE_DIR "/configs/train/tiny.yaml\n"
                           "runtime:\n"
                           "  heartbeat_interval: 0.2\n"
                           "  reconnect_initial: 0.05\n"
                           "  reconnect_max: 0.2\n" << runtime;
    return file;
  }
  static std::string dp(double epsilon) {
    return "  method: dp\n  epsilon: " + std::to_string(epsilon) +
           "\n  pixel-bits: 1\n  seed: 3\n  reproducible_for_experiments: true\n  threads: 2\n";
  }

  // The next message of `type` from the site (heartbeats and others in between are skipped).
  static proto::Received expect(proto::Server& server, proto::MessageType type) {
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    while (std::chrono::steady_clock::now() < deadline) {
      auto r = server.receive(200ms);
      if (r && r->envelope.type() == type) return *r;
    }
    ADD_FAILURE() << "no " << proto::to_string(type) << " from the site within the deadline";
    throw Error("timeout");
  }
  // The next message that is not a heartbeat.
  static proto::Received next_non_heartbeat(proto::Server& server) {
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    while (std::chrono::steady_clock::now() < deadline) {
      auto r = server.receive(200ms);
      if (r && r->envelope.type() != proto::MessageType::kHeartbeat) return *r;
    }
    ADD_FAILURE() << "nothing but heartbeats from the site";
    throw Error("timeout");
  }

  // The shared part of a fresh tiny model: what an aggregator's Task carries.
  static reid::NamedTensors global_weights(std::uint64_t seed) {
    reid::TrainConfig c =
        reid::load_train_config(std::string(PPREID_SOURCE_DIR) + "/configs/train/tiny.yaml");
    torch::manual_seed(seed);
    reid::ReidModel model(reid::ModelOptions{c.backbone, 0, true});
    return model->shared_state();
  }
  static proto::Task task(const reid::NamedTensors& weights, double mu = 0.0, std::uint32_t p = 4) {
    proto::Task t;
    t.weights = proto::to_wire(weights);
    t.settings = proto::TrainingSettings{1, 3.5e-3, 5e-4, mu, p, 4, 7};
    return t;
  }
  static void wait_until(const std::function<bool()>& condition) {
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    while (!condition() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(20ms);
  }

  static testing::TempDir* raw_dir_;
  testing::TempDir dir_;
};
testing::TempDir* SiteTest::raw_dir_ = nullptr;

TEST_F(SiteTest, HelloTaskUpdateStaleTaskEvaluateAndFinish) {
  auto server = start_server();
  RunningSite running(load_site_config(write_config(server->endpoint(), dp(2.0))));

  // Hello: the store's counts, the method and its epsilon.
  proto::Received hello = expect(*server, proto::MessageType::kHello);
  const data::Dataset store = data::load_dataset(dir_ / "store");
  const auto& h = std::get<proto::Hello>(hello.envelope.payload);
  EXPECT_EQ(hello.site_id, "site-1");
  EXPECT_EQ(hello.envelope.round, 0u);
  EXPECT_EQ(h.site_id, "site-1");
  EXPECT_EQ(h.dataset.images, store.train.size());
  EXPECT_EQ(h.dataset.identities, static_cast<std::uint64_t>(store.num_train_ids));
  EXPECT_EQ(h.dataset.cameras, 2u);
  EXPECT_EQ(h.dataset.deid_method, "dp");
  ASSERT_TRUE(h.dataset.epsilon.has_value());
  EXPECT_DOUBLE_EQ(*h.dataset.epsilon, 2.0);

  // Task round 5 with FedProx -> Update round 5 with the same names and shapes, new values.
  const reid::NamedTensors global = global_weights(4);
  ASSERT_TRUE(server->send(hello.peer, 5, task(global, 0.5)));
  proto::Received update_msg = expect(*server, proto::MessageType::kUpdate);
  EXPECT_EQ(update_msg.envelope.round, 5u);
  const auto& update = std::get<proto::Update>(update_msg.envelope.payload);
  EXPECT_FALSE(update.is_delta);
  EXPECT_EQ(update.sample_count, store.train.size());
  for (const char* key : {"loss", "seconds", "images_per_second", "steps"})
    EXPECT_TRUE(update.metrics.count(key)) << key;
  EXPECT_GT(update.metrics.at("steps"), 0.0);
  const reid::NamedTensors trained = proto::from_wire(update.weights);
  ASSERT_EQ(trained.size(), global.size());
  bool changed = false;
  for (std::size_t i = 0; i < global.size(); ++i) {
    EXPECT_EQ(trained[i].first, global[i].first);
    EXPECT_EQ(trained[i].second.sizes(), global[i].second.sizes()) << global[i].first;
    changed |= !torch::equal(trained[i].second, global[i].second);
  }
  EXPECT_TRUE(changed) << "the Update carries the Task's weights unchanged";
  wait_until([&] { return fs::exists(dir_ / "state" / "site_state.json"); });
  EXPECT_TRUE(fs::exists(dir_ / "state" / "head.pt"));

  // A stale Task (round 4 < 5) is dropped: the next answer is the EvalResult, not an Update.
  ASSERT_TRUE(server->send(hello.peer, 4, task(global)));
  ASSERT_TRUE(server->send(hello.peer, 5, proto::Evaluate{}));
  proto::Received answer = next_non_heartbeat(*server);
  ASSERT_EQ(answer.envelope.type(), proto::MessageType::kEvalResult);
  EXPECT_EQ(answer.envelope.round, 5u);
  const auto& eval = std::get<proto::EvalResult>(answer.envelope.payload);
  EXPECT_EQ(eval.query_count, store.query.size());
  for (const char* key : {"mAP", "rank1", "rank5", "centroid_mAP", "centroid_rank1"}) {
    ASSERT_TRUE(eval.metrics.count(key)) << key;
    EXPECT_GE(eval.metrics.at(key), 0.0) << key;
    EXPECT_LE(eval.metrics.at(key), 1.0) << key;
  }
  EXPECT_GT(eval.metrics.at("mAP"), 0.0);

  // An aggregator going away ("shutdown") does not end the site; "finished" does.
  ASSERT_TRUE(server->send(hello.peer, 0, proto::Bye{"shutdown: restarting"}));
  std::this_thread::sleep_for(400ms);
  EXPECT_FALSE(running.done());
  ASSERT_TRUE(server->send(hello.peer, 0, proto::Bye{"finished: 10 rounds"}));
  wait_until([&] { return running.done(); });
  running.join();
  EXPECT_EQ(running.error(), "");
  ASSERT_TRUE(running.exit().has_value());
  EXPECT_EQ(*running.exit(), SiteExit::kFinished);
  const SiteStats& s = running.site().stats();
  EXPECT_EQ(s.tasks_trained, 1u);
  EXPECT_EQ(s.stale_tasks, 1u);
  EXPECT_EQ(s.updates_sent, 1u);
  EXPECT_EQ(s.evaluations, 1u);
  // FedProx reached the training loss: mu 0.5 and a positive proximal term.
  EXPECT_DOUBLE_EQ(s.last_fedprox_mu, 0.5);
  EXPECT_GT(s.last_proximal_loss, 0.0);

  // Restarted, the site finds its store complete and its head where it left it.
  Site restarted(load_site_config(dir_ / "site.yaml"));
  const PrepareReport again = restarted.prepare();
  EXPECT_FALSE(again.deidentified);
  EXPECT_TRUE(again.restored_state);
}

// The simulator's hooks for hostile sites: a relabelled train split before any training, and a
// claimed sample count in the Hello and in the Update.
TEST_F(SiteTest, HooksRelabelTheTrainSplitAndClaimTheSampleCount) {
  auto server = start_server();
  SiteHooks hooks;
  std::atomic<std::size_t> relabelled{0};
  std::atomic<int> classes{0};
  hooks.on_train_split = [&](std::vector<data::ImageRecord>& train, int n) {
    for (auto& r : train) r.label = (r.label + 1) % n;
    classes = n;
    relabelled = train.size();
  };
  hooks.claimed_samples = [](std::uint64_t round, std::uint64_t real) {
    return real * (round == 0 ? 10 : 100 + round);
  };
  RunningSite running(load_site_config(write_config(server->endpoint(), "  method: none\n")), {},
                      hooks);
  proto::Received hello = expect(*server, proto::MessageType::kHello);
  const data::Dataset store = data::load_dataset(dir_ / "store");
  EXPECT_EQ(relabelled.load(), store.train.size());
  EXPECT_EQ(classes.load(), store.num_train_ids);
  EXPECT_EQ(std::get<proto::Hello>(hello.envelope.payload).dataset.images,
            10 * store.train.size());
  ASSERT_TRUE(server->send(hello.peer, 3, task(global_weights(4))));
  const proto::Received update = expect(*server, proto::MessageType::kUpdate);
  EXPECT_EQ(std::get<proto::Update>(update.envelope.payload).sample_count,
            103 * store.train.size());
  ASSERT_TRUE(server->send(hello.peer, 0, proto::Bye{"finished: 3 rounds"}));
  wait_until([&] { return running.done(); });
  running.join();
  EXPECT_EQ(running.error(), "");
  EXPECT_EQ(running.site().stats().tasks_trained, 1u);
}

TEST_F(SiteTest, AHookLabelOutsideTheClassifierIsRefused) {
  SiteHooks hooks;
  hooks.on_train_split = [](std::vector<data::ImageRecord>& train, int n) { train[1].label = n; };
  Site site(load_site_config(write_config("tcp://127.0.0.1:9", "  method: none\n")), hooks);
  EXPECT_THAT(testing::error_of([&] { site.prepare(); }),
              ::testing::AllOf(HasSubstr("a fault hook gave train image"),
                               HasSubstr("outside the site's")));
}

// Learning, not only a figure in [0, 1]: the scripted aggregator sends the site's own Update back
// as the next round's model, and the second round's model retrieves the site's query/gallery
// split better than the first's.
TEST_F(SiteTest, TheSecondRoundsModelRetrievesBetterThanTheFirsts) {
  // mAP after round 1 -> round 2, measured for kSeed 1..5 (edit kSeed, then
  // `build/tests/ppreid_tests --gtest_filter=SiteTest.TheSecondRounds*`):
  //   1: 0.2595 -> 0.2772 (+0.018)   2: 0.2692 -> 0.3371 (+0.068)   3: 0.1775 -> 0.2325 (+0.055)
  //   4: 0.1587 -> 0.2997 (+0.141)   5: 0.1314 -> 0.1704 (+0.039)
  // The margin is half the smallest gain. Seed 2 has the most headroom over it, so another CPU's
  // rounding cannot flip the result; with one torch thread the figures repeat exactly.
  constexpr std::uint64_t kSeed = 2;  // data, DP noise, initial weights, batches
  constexpr double kMargin = 0.009;
  data::synth::generate(testing::small_synth(16, 2, 8, 64, 32, 100 + kSeed), dir_ / "raw");
  auto server = start_server();
  SiteConfig config = load_site_config(write_config(server->endpoint(), dp(1e5)));
  config.raw = dir_ / "raw";
  config.deid.seed = kSeed;
  config.threads = 1;  // one torch thread: the same figures on every run and machine
  config.deid_threads = 1;
  RunningSite running(std::move(config));
  const proto::Received hello = expect(*server, proto::MessageType::kHello);

  reid::NamedTensors weights = global_weights(kSeed);
  std::vector<double> map;
  for (std::uint64_t round = 1; round <= 2; ++round) {
    proto::Task t = task(weights);
    t.settings.local_epochs = 2;
    t.settings.seed = kSeed;
    ASSERT_TRUE(server->send(hello.peer, round, std::move(t)));
    const proto::Received update = expect(*server, proto::MessageType::kUpdate);
    weights = proto::from_wire(std::get<proto::Update>(update.envelope.payload).weights);
    ASSERT_TRUE(server->send(hello.peer, round, proto::Evaluate{proto::to_wire(weights)}));
    const proto::Received result = expect(*server, proto::MessageType::kEvalResult);
    map.push_back(std::get<proto::EvalResult>(result.envelope.payload).metrics.at("mAP"));
  }
  EXPECT_GT(map[1] - map[0], kMargin) << "mAP after round 1 " << map[0] << ", after round 2 "
                                      << map[1];

  ASSERT_TRUE(server->send(hello.peer, 0, proto::Bye{"finished: 2 rounds"}));
  wait_until([&] { return running.done(); });
  running.join();
  EXPECT_EQ(running.error(), "");
}

TEST_F(SiteTest, ModelMismatchIsRejectedAndFailsTheSite) {
  auto server = start_server();
  RunningSite running(load_site_config(write_config(server->endpoint(), dp(1.0))));
  proto::Received hello = expect(*server, proto::MessageType::kHello);
  reid::NamedTensors wrong = global_weights(1);
  wrong.pop_back();
  wrong[0].second = torch::zeros({3, 3});
  ASSERT_TRUE(server->send(hello.peer, 1, task(wrong)));
  proto::Received error = expect(*server, proto::MessageType::kError);
  const auto& e = std::get<proto::ErrorMessage>(error.envelope.payload);
  EXPECT_EQ(e.code, proto::ErrorCode::kRejected);
  EXPECT_THAT(e.message, HasSubstr("model mismatch"));
  wait_until([&] { return running.done(); });
  EXPECT_THAT(running.error(), HasSubstr("use the same model profile as the aggregator"));
  EXPECT_THAT(running.error(), HasSubstr("missing '"));
}

TEST_F(SiteTest, StopFlagSendsByeShutdown) {
  auto server = start_server();
  RunningSite running(load_site_config(write_config(server->endpoint(), dp(1.0))));
  expect(*server, proto::MessageType::kHello);
  expect(*server, proto::MessageType::kHeartbeat);  // idle heartbeats flow
  running.stop();
  proto::Received bye = expect(*server, proto::MessageType::kBye);
  EXPECT_THAT(std::get<proto::Bye>(bye.envelope.payload).reason, HasSubstr("shutdown: "));
  running.join();
  EXPECT_EQ(running.error(), "");
  EXPECT_EQ(running.exit(), SiteExit::kStopped);
}

TEST_F(SiteTest, WrongPinnedAggregatorKeyFailsWithAClearMessage) {
  auto server = start_server();
  RunningSite running(
      load_site_config(write_config(server->endpoint(), dp(1.0), "impostor.pub")));
  wait_until([&] { return running.done(); });
  running.join();
  EXPECT_FALSE(running.exit().has_value());
  EXPECT_THAT(running.error(), HasSubstr("pinned aggregator key is wrong"));
  EXPECT_THAT(running.error(), HasSubstr((dir_ / "impostor.pub").string()));
  EXPECT_THAT(running.error(), HasSubstr("allow-list"));
}

TEST_F(SiteTest, GivesUpOnAnUnreachableAggregatorAfterConnectGiveUp) {
  // A port nobody listens on: bind one, note it, close it.
  std::string endpoint;
  {
    auto server = start_server();
    endpoint = server->endpoint();
  }
  RunningSite running(load_site_config(
      write_config(endpoint, dp(1.0), "aggregator.pub", "  connect_give_up: 1\n")));
  wait_until([&] { return running.done(); });
  running.join();
  EXPECT_THAT(running.error(), HasSubstr("gave up reaching the aggregator at " + endpoint));
}

TEST_F(SiteTest, StoreIsMadeOnceAndAStoreOfOtherParametersIsRefused) {
  const fs::path config = write_config("tcp://127.0.0.1:1", dp(2.0));
  PrepareReport first = Site(load_site_config(config)).prepare();
  EXPECT_TRUE(first.deidentified);
  // The quality report (computed from the raw images) is in the private state directory, and
  // nothing in the store it trains from mentions SSIM, PSNR or the seed.
  const auto quality = nlohmann::json::parse(util::read_file(dir_ / "state" / "deid_quality.json"));
  EXPECT_EQ(quality["derived_from_raw_data"], true);
  EXPECT_LT(quality["mean_ssim"].get<double>(), 1.0);
  for (const auto& e : fs::recursive_directory_iterator(dir_ / "store")) {
    if (!e.is_regular_file() || e.path().extension() == ".jpg" || e.path().extension() == ".png")
      continue;
    const std::string text = util::read_file(e.path());
    EXPECT_EQ(text.find("ssim"), std::string::npos) << e.path();
    EXPECT_EQ(text.find("psnr"), std::string::npos) << e.path();
    EXPECT_EQ(text.find("\"seed\""), std::string::npos) << e.path();
  }
  const auto made = fs::last_write_time(dir_ / "store" / "deid.json");
  const auto image = *fs::directory_iterator(dir_ / "store" / "bounding_box_train");
  const auto image_time = fs::last_write_time(image.path());

  PrepareReport second = Site(load_site_config(config)).prepare();
  EXPECT_FALSE(second.deidentified);
  EXPECT_EQ(fs::last_write_time(dir_ / "store" / "deid.json"), made);
  EXPECT_EQ(fs::last_write_time(image.path()), image_time);
  EXPECT_EQ(second.summary, first.summary);

  // Same store, another epsilon: refused with what to do.
  const std::string error = testing::error_of([&] {
    Site(load_site_config(write_config("tcp://127.0.0.1:1", dp(4.0)))).prepare();
  });
  EXPECT_THAT(error, HasSubstr("was de-identified with other parameters"));
  EXPECT_THAT(error, HasSubstr("choose another data.store"));
}

TEST_F(SiteTest, InterruptedStoreIsResumed) {
  const fs::path config = write_config("tcp://127.0.0.1:1", dp(2.0));
  Site(load_site_config(config)).prepare();
  // What a killed `ppreid deid` leaves: the partial marker and only some images.
  const fs::path store = dir_ / "store";
  nlohmann::json manifest = nlohmann::json::parse(util::read_file(store / "deid.json"));
  const nlohmann::json identity = {{"method", manifest["method"]},
                                   {"parameters", manifest["parameters"]}};
  std::ofstream(store / "deid.partial.json") << identity.dump(2);
  fs::remove(store / "deid.json");
  int removed = 0;
  for (const auto& e : fs::directory_iterator(store / "query"))
    if (removed++ < 3) fs::remove(e.path());

  PrepareReport report = Site(load_site_config(config)).prepare();
  EXPECT_TRUE(report.deidentified);
  EXPECT_TRUE(report.resumed);
  EXPECT_TRUE(fs::exists(store / "deid.json"));
  EXPECT_FALSE(fs::exists(store / "deid.partial.json"));
  manifest = nlohmann::json::parse(util::read_file(store / "deid.json"));
  EXPECT_EQ(manifest["released_this_run"].get<int>(), 3);
}

}  // namespace
}  // namespace ppreid::client

namespace ppreid::client {
namespace {

TEST_F(SiteTest, DataParallelRanksTrainEachTaskTogetherAndOnlyRankZeroTalksToTheAggregator) {
  auto server = start_server();
  const SiteConfig config = load_site_config(write_config(server->endpoint(), dp(2.0)));
  const int port = testing::free_tcp_port();
  // Both ranks read the same config and store (a shared filesystem); rank 0 de-identifies.
  RunningSite rank0(config, testing::loopback_launch(2, 0, port));
  RunningSite rank1(config, testing::loopback_launch(2, 1, port));

  proto::Received hello = expect(*server, proto::MessageType::kHello);
  const reid::NamedTensors global = global_weights(4);
  ASSERT_TRUE(server->send(hello.peer, 1, task(global, 0.0, /*p=*/2)));
  proto::Received update_msg = expect(*server, proto::MessageType::kUpdate);
  EXPECT_EQ(update_msg.envelope.round, 1u);
  const reid::NamedTensors sent =
      proto::from_wire(std::get<proto::Update>(update_msg.envelope.payload).weights);
  ASSERT_TRUE(server->send(hello.peer, 0, proto::Bye{"finished: 1 round"}));
  wait_until([&] { return rank0.done() && rank1.done(); });
  rank0.join();
  rank1.join();
  EXPECT_EQ(rank0.error(), "");
  EXPECT_EQ(rank1.error(), "");
  ASSERT_TRUE(rank1.exit().has_value());
  EXPECT_EQ(*rank1.exit(), SiteExit::kFinished);  // told by rank 0, not by the aggregator
  EXPECT_EQ(rank0.site().stats().tasks_trained, 1u);
  EXPECT_EQ(rank1.site().stats().tasks_trained, 1u);
  EXPECT_EQ(rank1.site().stats().hellos, 0u);  // it never connected
  EXPECT_EQ(rank1.site().stats().updates_sent, 0u);
  // The rank that did not send holds exactly the weights that were sent, and they moved.
  const reid::NamedTensors follower = rank1.site().shared_weights();
  ASSERT_EQ(follower.size(), sent.size());
  bool changed = false;
  for (std::size_t i = 0; i < sent.size(); ++i) {
    EXPECT_TRUE(torch::equal(follower[i].second, sent[i].second)) << sent[i].first;
    changed |= !torch::equal(sent[i].second, global[i].second);
  }
  EXPECT_TRUE(changed);
}

}  // namespace
}  // namespace ppreid::client
