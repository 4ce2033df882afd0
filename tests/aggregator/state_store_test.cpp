#include "aggregator/state_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "aggregator/fedopt.h"
#include "core/util/atomic_file.h"
#include "tests/aggregator/agg_fixtures.h"
#include "tests/support/errors.h"
#include "tests/support/temp_dir.h"

namespace ppreid::agg {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using fixtures::random_like;
using fixtures::small_model;
using fixtures::update_of;

// Round r of a small federation with FedAdam: the state a real aggregator would checkpoint.
AggregatorState state_after(std::int64_t rounds) {
  StrategyConfig c;
  c.kind = StrategyKind::kFedAdam;
  FedOpt adam(c);
  AggregatorState s;
  s.global = random_like(small_model(), 1);
  s.sites.register_site("site-a", "fp-a");
  s.sites.register_site("site-b", "fp-b");
  for (std::int64_t r = 1; r <= rounds; ++r) {
    adam.begin_round(s.global);
    adam.add(update_of("site-a", r, 10, random_like(s.global, 10 * r)));
    adam.add(update_of("site-b", r, 20, random_like(s.global, 10 * r + 1)));
    s.global = adam.finish();
    s.sites.record_update("site-a", r, 10);
    s.sites.record_update("site-b", r, 20);
  }
  s.round = rounds;
  s.strategy = adam.state();
  s.info = {{"federation", "test"}};
  return s;
}

void expect_same(const AggregatorState& got, const AggregatorState& want) {
  EXPECT_EQ(got.round, want.round);
  ASSERT_EQ(got.global.size(), want.global.size());
  for (std::size_t i = 0; i < got.global.size(); ++i) {
    EXPECT_EQ(got.global[i].first, want.global[i].first);
    EXPECT_TRUE(torch::equal(got.global[i].second, want.global[i].second)) << got.global[i].first;
  }
  EXPECT_EQ(got.strategy.kind, want.strategy.kind);
  EXPECT_EQ(got.strategy.meta, want.strategy.meta);
  ASSERT_EQ(got.strategy.tensors.size(), want.strategy.tensors.size());
  for (std::size_t i = 0; i < got.strategy.tensors.size(); ++i) {
    EXPECT_EQ(got.strategy.tensors[i].first, want.strategy.tensors[i].first);
    EXPECT_TRUE(torch::equal(got.strategy.tensors[i].second, want.strategy.tensors[i].second));
  }
  EXPECT_EQ(got.sites.to_json(), want.sites.to_json());
  EXPECT_EQ(got.info, want.info);
}

struct Crash {};

const std::vector<SaveStep> kSteps = {SaveStep::kGlobalWritten,      SaveStep::kStrategyWritten,
                                      SaveStep::kSitesWritten,       SaveStep::kManifestWritten,
                                      SaveStep::kPreviousMovedAside, SaveStep::kSwappedIn};

// Saves `state`, "crashing" (the hook throws, nothing after it runs) right after `at`.
void save_crashing_at(const fs::path& dir, const AggregatorState& state, SaveStep at) {
  StateStore store(dir);
  store.set_step_hook([at](SaveStep s) {
    if (s == at) throw Crash{};
  });
  EXPECT_THROW(store.save(state), Crash) << to_string(at);
}

TEST(StateStore, NothingSavedLoadsAsAFreshStart) {
  testing::TempDir tmp;
  EXPECT_FALSE(StateStore(tmp / "state").load().has_value());
  EXPECT_FALSE(StateStore(tmp / "state").saved_round().has_value());
}

TEST(StateStore, RoundTripsEverything) {
  testing::TempDir tmp;
  AggregatorState s = state_after(3);
  StateStore store(tmp / "state");
  store.save(s);
  auto loaded = store.load();
  ASSERT_TRUE(loaded);
  expect_same(*loaded, s);
  EXPECT_EQ(store.saved_round(), 3);
  for (const char* file : {"global.pt", "strategy.pt", "sites.json", "manifest.json"})
    EXPECT_TRUE(fs::exists(store.checkpoint_dir() / file)) << file;
  // A restored FedAdam continues from the loaded moments.
  StrategyConfig c;
  c.kind = StrategyKind::kFedAdam;
  FedOpt adam(c);
  adam.restore(loaded->strategy, loaded->global);
  EXPECT_EQ(adam.step(), 3);
}

// A crash at any point of a save leaves the last COMPLETE round: the previous one before the
// new checkpoint is swapped in, the new one after; never a mix of the two.
TEST(StateStore, CrashAtEveryStepLeavesTheLastCompleteRound) {
  const AggregatorState r1 = state_after(1), r2 = state_after(2);
  for (SaveStep at : kSteps) {
    SCOPED_TRACE(std::string(to_string(at)));
    testing::TempDir tmp;
    StateStore(tmp / "state").save(r1);
    save_crashing_at(tmp / "state", r2, at);
    auto loaded = StateStore(tmp / "state").load();
    ASSERT_TRUE(loaded);
    expect_same(*loaded, at == SaveStep::kSwappedIn ? r2 : r1);
    EXPECT_EQ(StateStore(tmp / "state").saved_round(), loaded->round);
  }
}

// The restarted aggregator redoes the round and may crash again while saving it, at any step;
// the last complete round survives every combination, and the final save completes cleanly.
TEST(StateStore, RepeatedCrashesNeverLoseOrDoubleARound) {
  const AggregatorState r1 = state_after(1), r2 = state_after(2), r3 = state_after(3);
  for (SaveStep first : kSteps) {
    for (SaveStep second : kSteps) {
      SCOPED_TRACE(std::string(to_string(first)) + " then " + std::string(to_string(second)));
      testing::TempDir tmp;
      StateStore(tmp / "state").save(r1);
      save_crashing_at(tmp / "state", r2, first);
      // The restart resumes after the loaded round and saves the round after it.
      std::int64_t resumed = StateStore(tmp / "state").load()->round;
      const AggregatorState& next = resumed == 1 ? r2 : r3;
      save_crashing_at(tmp / "state", next, second);
      auto loaded = StateStore(tmp / "state").load();
      ASSERT_TRUE(loaded);
      std::int64_t expected = second == SaveStep::kSwappedIn ? next.round : resumed;
      EXPECT_EQ(loaded->round, expected);
      expect_same(*loaded, expected == 1 ? r1 : expected == 2 ? r2 : r3);
      StateStore(tmp / "state").save(next);  // no crash this time
      expect_same(*StateStore(tmp / "state").load(), next);
      EXPECT_FALSE(fs::exists(tmp / "state" / ".checkpoint.old"));
      EXPECT_FALSE(fs::exists(tmp / "state" / ".checkpoint.tmp"));
    }
  }
}

TEST(StateStore, AnInterruptedFirstSaveIsAFreshStart) {
  for (SaveStep at : {SaveStep::kGlobalWritten, SaveStep::kManifestWritten}) {
    testing::TempDir tmp;
    save_crashing_at(tmp / "state", state_after(0), at);
    EXPECT_FALSE(StateStore(tmp / "state").load().has_value());
  }
}

TEST(StateStore, RefusesToGoBackARoundButMaySaveTheSameRoundAgain) {
  testing::TempDir tmp;
  StateStore store(tmp / "state");
  store.save(state_after(2));
  AggregatorState again = state_after(2);
  again.sites.register_site("site-c", "fp-c");
  store.save(again);
  EXPECT_EQ(store.load()->sites.size(), 3u);
  EXPECT_THAT(testing::error_of([&] { store.save(state_after(1)); }),
              HasSubstr("round 1 is older than the saved round 2"));
  EXPECT_EQ(store.saved_round(), 2);
}

TEST(StateStore, LoadNamesCorruptedTruncatedAndMissingFiles) {
  testing::TempDir tmp;
  StateStore store(tmp / "state");
  const AggregatorState s = state_after(1);
  const fs::path ckpt = store.checkpoint_dir();
  auto fresh = [&] {
    fs::remove_all(tmp / "state");
    store.save(s);
  };

  fresh();
  {
    std::string bytes = util::read_file(ckpt / "global.pt");
    bytes[bytes.size() / 2] ^= 0x5a;
    std::ofstream(ckpt / "global.pt", std::ios::binary) << bytes;
  }
  EXPECT_THAT(testing::error_of([&] { store.load(); }),
              HasSubstr("global.pt' does not match its SHA-256"));

  fresh();
  fs::resize_file(ckpt / "strategy.pt", 10);
  EXPECT_THAT(testing::error_of([&] { store.load(); }), HasSubstr("strategy.pt' has 10 bytes"));

  fresh();
  fs::remove(ckpt / "sites.json");
  EXPECT_THAT(testing::error_of([&] { store.load(); }), HasSubstr("sites.json' is missing"));

  fresh();
  {
    auto manifest = nlohmann::json::parse(util::read_file(ckpt / "manifest.json"));
    manifest.erase("round");
    std::ofstream(ckpt / "manifest.json") << manifest.dump();
  }
  EXPECT_THAT(testing::error_of([&] { store.load(); }), HasSubstr("field 'round'"));

  fresh();
  {
    auto manifest = nlohmann::json::parse(util::read_file(ckpt / "manifest.json"));
    manifest["global"]["tensors"][0]["shape"] = {7};
    std::ofstream(ckpt / "manifest.json") << manifest.dump();
  }
  EXPECT_THAT(testing::error_of([&] { store.load(); }),
              HasSubstr("tensor 'backbone.conv.weight' is Float of another shape"));

  fresh();
  std::ofstream(ckpt / "manifest.json") << "{ not json";
  EXPECT_THAT(testing::error_of([&] { store.load(); }), HasSubstr("not valid JSON"));

  fresh();
  fs::remove(ckpt / "manifest.json");
  EXPECT_THAT(testing::error_of([&] { store.load(); }), HasSubstr("has no manifest.json"));
}

TEST(StateStore, RefusesInconsistentStatesOnSave) {
  testing::TempDir tmp;
  StateStore store(tmp / "state");
  AggregatorState s = state_after(1);
  s.round = 0;  // the registry saw round 1
  EXPECT_THAT(testing::error_of([&] { store.save(s); }), HasSubstr("seen in round 1"));
  AggregatorState empty;
  EXPECT_THAT(testing::error_of([&] { store.save(empty); }), HasSubstr("no global weights"));
  EXPECT_FALSE(store.saved_round().has_value());
}

}  // namespace
}  // namespace ppreid::agg
