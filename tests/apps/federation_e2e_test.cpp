// A whole federation in one process: the real Aggregator daemon and two real Sites (synthetic
// data, image DP, tiny model), each on its own thread, over CURVE on loopback.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "aggregator/aggregator.h"
#include "aggregator/state_store.h"
#include "client/site.h"
#include "client/site_config.h"
#include "core/data/synth/generator.h"
#include "protocols/keys.h"
#include "tests/support/synth.h"
#include "tests/support/temp_dir.h"

namespace ppreid {
namespace {

namespace fs = std::filesystem;

TEST(FederationTest, TwoSitesTrainTwoRoundsAndEvaluateTheGlobalModel) {
  // Every seed of the run: the people, the DP noise, the initial weights, the batches.
  constexpr std::uint64_t kSeed = 2;
  testing::TempDir dir;
  fs::create_directories(dir / "allow");
  proto::write_keypair(dir / "aggregator");
  for (const char* id : {"site-1", "site-2"}) {
    proto::write_keypair(dir / id);
    fs::copy_file(dir / (std::string(id) + ".pub"), dir / "allow" / (std::string(id) + ".pub"));
  }
  const std::string tiny = std::string(PPREID_SOURCE_DIR) + "/configs/train/tiny.yaml";
  // People no site has: the aggregator's own held-out test set.
  data::synth::generate(testing::small_synth(16, 2, 8, 64, 32, 1000 + kSeed), dir / "heldout");
  agg::AggregatorConfig ac = agg::parse_aggregator_config(
      "federation_id: e2e\nlisten: tcp://127.0.0.1:*\n"
      "security: {secret_key: aggregator.key, allow_list: allow}\n"
      "state_dir: state\nmodel: " + tiny + "\nthreads: 1\nrounds: 2\nseed: " +
          std::to_string(kSeed) + "\n"
      "sites: {min_sites: 2, min_updates: 2, round_timeout: 300, site_timeout: 30}\n"
      "task: {local_epochs: 3}\n"
      "evaluation: {sites: true, timeout: 120, dataset: heldout}\n",
      "e2e.yaml", dir.path());
  agg::Aggregator aggregator(ac);
  const auto initial = aggregator.global();

  std::vector<std::unique_ptr<client::Site>> sites;
  for (int k = 1; k <= 2; ++k) {
    const std::string id = "site-" + std::to_string(k);
    data::synth::generate(testing::small_synth(16, 2, 8, 64, 32, 100 * kSeed + k), dir / id / "raw");
    const fs::path file = dir / (id + ".yaml");
    // Image DP at epsilon 1e5, where utility survives (README, dp-sweep): at epsilon 1 the
    // images are noise and no round could do better than the one before.
    std::ofstream(file) << "site_id: " << id << "\nfederation_id: e2e\n"
                        << "aggregator: {endpoint: '" << aggregator.endpoint()
                        << "', public_key: aggregator.pub}\n"
                        << "secret_key: " << id << ".key\n"
                        << "data: {raw: " << id << "/raw, store: " << id << "/store, state: " << id
                        << "/state}\n"
                        << "deid: {method: dp, epsilon: 1.0e5, pixel-bits: 1, seed: " << 10 * kSeed + k
                        << ", reproducible_for_experiments: true, threads: 1}\n"
                        << "training: {config: " << tiny << ", threads: 1}\n"
                        << "runtime: {heartbeat_interval: 0.5}\n";
    sites.push_back(std::make_unique<client::Site>(client::load_site_config(file)));
  }

  std::atomic<bool> stop{false};
  std::optional<agg::RunOutcome> outcome;
  std::string aggregator_error;
  std::thread agg_thread([&] {
    try {
      outcome = aggregator.run(stop);
    } catch (const std::exception& e) {
      aggregator_error = e.what();
    }
  });
  std::vector<std::optional<client::SiteExit>> exits(2);
  std::vector<std::string> site_errors(2);
  std::vector<std::thread> site_threads;
  for (int k = 0; k < 2; ++k)
    site_threads.emplace_back([&, k] {
      try {
        exits[k] = sites[k]->run(stop);
      } catch (const std::exception& e) {
        site_errors[k] = e.what();
      }
    });
  agg_thread.join();
  for (auto& t : site_threads) t.join();

  ASSERT_EQ(aggregator_error, "");
  EXPECT_EQ(outcome, agg::RunOutcome::kFinished);
  for (int k = 0; k < 2; ++k) {
    SCOPED_TRACE(k);
    EXPECT_EQ(site_errors[k], "");
    EXPECT_EQ(exits[k], client::SiteExit::kFinished);
    EXPECT_EQ(sites[k]->stats().tasks_trained, 2u);
    EXPECT_EQ(sites[k]->stats().updates_sent, 2u);
    EXPECT_EQ(sites[k]->stats().evaluations, 2u);
  }
  EXPECT_EQ(aggregator.round(), 2);
  // The model moved, and what the aggregator holds is what it checkpointed.
  double moved = 0;
  for (std::size_t i = 0; i < initial.size(); ++i)
    if (initial[i].second.is_floating_point())
      moved += (aggregator.global()[i].second - initial[i].second).abs().sum().item<double>();
  EXPECT_GT(moved, 0.0);
  auto saved = agg::StateStore(dir / "state").load();
  ASSERT_TRUE(saved);
  EXPECT_EQ(saved->round, 2);
  EXPECT_TRUE(saved->sites.find("site-1") && saved->sites.find("site-2"));
  EXPECT_EQ(saved->sites.find("site-1")->last_seen_round, 2);

  // Every round: two updates, the sites' evaluation of the new model, nothing rejected.
  std::ifstream in(dir / "state" / "metrics.jsonl");
  int rounds = 0;
  std::vector<double> site_map, held_out_map;
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    SCOPED_TRACE(line);
    EXPECT_EQ(j["outcome"], "completed");
    EXPECT_EQ(j["updates_accepted"], 2);
    EXPECT_EQ(j["updates_rejected"], 0);
    ASSERT_TRUE(j.contains("eval"));
    const double map = j["eval"]["sites"]["mAP"].get<double>();
    site_map.push_back(map);
    held_out_map.push_back(j["eval"]["dataset"]["instance"]["mAP"].get<double>());
    EXPECT_GT(map, 0.0);
    EXPECT_LE(map, 1.0);
    EXPECT_GT(j["eval"]["sites"]["queries"].get<int>(), 0);
    EXPECT_TRUE(j.contains("train_loss"));
    const double held_out = j["eval"]["dataset"]["centroid"]["mAP"].get<double>();
    EXPECT_GT(held_out, 0.0);
    EXPECT_LE(held_out, 1.0);
    ++rounds;
  }
  ASSERT_EQ(rounds, 2);
  // Learning: the global model of round 2 retrieves better than that of round 1, on the sites'
  // own query/gallery splits and on the held-out people (instance mAP). Measured for kSeed 1..5
  // (edit kSeed, then `build/tests/ppreid_tests --gtest_filter=FederationTest.*`), round 1 -> 2:
  //   sites:    1: 0.2162 -> 0.2262 (+0.010)   2: 0.2097 -> 0.2444 (+0.035)
  //             3: 0.1897 -> 0.1993 (+0.010)   4: 0.1846 -> 0.3865 (+0.202)
  //             5: 0.0901 -> 0.2498 (+0.160)
  //   held-out: 1: 0.0695 -> 0.0720 (+0.003)   2: 0.1797 -> 0.3052 (+0.126)
  //             3: 0.3594 -> 0.4750 (+0.116)   4: 0.1065 -> 0.1105 (+0.004)
  //             5: 0.0960 -> 0.1252 (+0.029)
  // The margins are half the smallest gains. Seed 2 has the most headroom over both, so another
  // CPU's rounding cannot flip the result; with one torch thread everywhere and two sites (whose
  // weighted sum does not depend on the order the updates arrive in) the figures repeat exactly.
  EXPECT_GT(site_map[1] - site_map[0], 0.0048)
      << "sites' mAP " << site_map[0] << " -> " << site_map[1];
  EXPECT_GT(held_out_map[1] - held_out_map[0], 0.0012)
      << "held-out mAP " << held_out_map[0] << " -> " << held_out_map[1];
}

}  // namespace
}  // namespace ppreid
