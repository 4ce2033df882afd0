#include "simulations/federation_run.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "core/data/dataset.h"
#include "core/util/atomic_file.h"
#include "tests/support/errors.h"
#include "tests/support/paths.h"
#include "tests/support/temp_dir.h"

namespace ppreid::sim {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;


SimConfig small_config(const std::string& runner) {
  return parse_sim_config(R"(
name: run-test
seed: 2
runner: )" + runner + R"(
threads: 2
data: {profile: ../tiny.yaml, ids: 16, images_per_id: 5}
partition: {kind: identity, sites: 2}
federation: {model: ../train/tiny.yaml, rounds: 1, local_epochs: 1, site_timeout: 5}
deid: {method: blur, kernel: S}
)",
                          testing::kSimDir / "run-test.yaml");
}

TEST(PopulationTest, SitesGetDisjointRawTrainSplitsAndTheTestSplitIsHeldOut) {
  testing::TempDir dir;
  const SimConfig c = small_config("threads");
  const Population pop = prepare_population(c, dir.path());
  ASSERT_EQ(pop.sites.size(), 2u);
  data::LoadOptions train_only;
  train_only.require_query_gallery = false;
  std::set<int> seen;
  std::size_t images = 0;
  for (const auto& site : pop.sites) {
    const data::Dataset d = data::load_dataset(site.raw, train_only);
    EXPECT_EQ(d.train.size(), site.images);
    images += d.train.size();
    std::set<int> mine;
    for (const auto& r : d.train) mine.insert(r.pid);
    for (int pid : mine) EXPECT_TRUE(seen.insert(pid).second) << "pid " << pid << " at two sites";
    EXPECT_TRUE(fs::exists(site.raw / "keypoints.csv"));
    EXPECT_FALSE(fs::exists(site.raw / "query"));  // a site has no test split of its own
  }
  const data::Dataset whole = data::load_dataset(pop.raw);
  EXPECT_EQ(images, whole.train.size());
  data::LoadOptions test_only;
  test_only.require_train = false;
  const data::Dataset test = data::load_dataset(pop.test, test_only);
  EXPECT_EQ(test.query.size(), whole.query.size());
  for (const auto& r : test.query) EXPECT_EQ(seen.count(r.pid), 0u) << "test pid " << r.pid;
  // Prepared again with the same settings: reused; with others: refused.
  EXPECT_NO_THROW(prepare_population(c, dir.path()));
  SimConfig other = c;
  other.partition.sites = 3;
  EXPECT_THAT(testing::error_of([&] { prepare_population(other, dir.path()); }),
              HasSubstr("another --out"));
  // The run's keys: owner-only secrets, the sites' public keys in the allow-list.
  const SimKeys keys = prepare_keys(dir.path(), pop.sites);
  EXPECT_TRUE(fs::exists(keys.allow_list / "site-2.pub"));
  const auto perms = fs::status(keys.site_key("site-1")).permissions();
  EXPECT_EQ(perms & (fs::perms::group_all | fs::perms::others_all), fs::perms::none);
}

// The processes runner starts real `ppreid site` children from generated configs.
TEST(FederationRunTest, SiteProcessesTrainARoundAndTheResultIsReusedWhenComplete) {
  testing::TempDir dir;
  const SimConfig c = small_config("processes");
  const Population pop = prepare_population(c, dir.path());
  const SimKeys keys = prepare_keys(dir.path(), pop.sites);
  FederationRunOptions o;
  o.site_binary = PPREID_BINARY;
  const NamedMethod method{"blur S", c.deid};
  const FederationResult r = run_federation(c, pop, keys, method, dir / "run", o);
  ASSERT_EQ(r.rounds.size(), 1u);
  EXPECT_EQ(r.rounds[0].accepted, (std::vector<std::string>{"site-1", "site-2"}));
  EXPECT_GT(r.rounds[0].map, 0.0);
  EXPECT_GT(r.deid_ssim, 0.0);
  EXPECT_LT(r.deid_ssim, 1.0);
  EXPECT_TRUE(fs::exists(dir / "run" / "logs" / "site-1.log"));
  EXPECT_TRUE(fs::exists(dir / "run" / "test" / "query"));  // the test split, blurred too
  // The site configs are real configs a site operator could run.
  EXPECT_THAT(util::read_file(dir / "run" / "sites" / "site-1.yaml"), HasSubstr("kernel: \"S\""));

  FederationRunOptions no_binary;  // a complete run is not started again
  const FederationResult again = run_federation(c, pop, keys, method, dir / "run", no_binary);
  EXPECT_EQ(again.to_json(), r.to_json());
  // Another method in the same directory: the old run is discarded, and this one needs sites.
  const NamedMethod other{"blur L", [&] {
                            deid::MethodSpec s = c.deid;
                            s.kernel = "L";
                            return s;
                          }()};
  EXPECT_THAT(testing::error_of([&] { run_federation(c, pop, keys, other, dir / "run", no_binary); }),
              HasSubstr("site_binary"));
}

TEST(SeededMethodTest, OnlyNoisyMethodsGetTheSeed) {
  deid::MethodSpec dp;
  dp.method = "dp";
  EXPECT_EQ(*seeded_method(dp, 7).seed, 7u);
  dp.seed = 3;
  EXPECT_EQ(*seeded_method(dp, 7).seed, 3u);  // an explicit seed wins
  deid::MethodSpec blur;
  blur.method = "blur";
  EXPECT_FALSE(seeded_method(blur, 7).seed.has_value());
}

}  // namespace
}  // namespace ppreid::sim
