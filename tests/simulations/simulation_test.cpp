#include "simulations/simulation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <sstream>
#include <string>

#include "core/util/atomic_file.h"
#include "tests/support/errors.h"
#include "tests/support/paths.h"
#include "tests/support/temp_dir.h"

namespace ppreid::sim {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;


nlohmann::json read_json(const fs::path& file) {
  return nlohmann::json::parse(util::read_file(file));
}

// configs/sim/tiny.yaml, the simulation the issue's acceptance test names, run once for the
// whole suite (it trains real models); the tests read what it wrote.
class TinySimulationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    config_ = new SimConfig(load_sim_config(testing::kSimDir / "tiny.yaml"));
    result_ = new SimulationResult(run_simulation(*config_, dir_->path() / "a", {}));
  }
  static void TearDownTestSuite() {
    delete result_;
    delete config_;
    delete dir_;
  }
  static fs::path out() { return dir_->path() / "a"; }

  static testing::TempDir* dir_;
  static SimConfig* config_;
  static SimulationResult* result_;
};
testing::TempDir* TinySimulationTest::dir_ = nullptr;
SimConfig* TinySimulationTest::config_ = nullptr;
SimulationResult* TinySimulationTest::result_ = nullptr;

TEST_F(TinySimulationTest, TheSummaryHasEveryField) {
  const nlohmann::json s = read_json(out() / "summary.json");
  EXPECT_EQ(s, result_->summary);
  EXPECT_EQ(s.at("name"), "tiny");
  EXPECT_EQ(s.at("experiment"), "federation");
  EXPECT_EQ(s.at("seed"), 1);
  EXPECT_EQ(s.at("rounds"), 2);
  EXPECT_EQ(s.at("local_epochs"), 1);
  EXPECT_EQ(s.at("strategy").at("name"), "fedavg");
  EXPECT_EQ(s.at("site_threads"), 1);  // 2 threads shared by 2 sites
  const auto& pop = s.at("population");
  EXPECT_EQ(pop.at("partition"), "identity");
  ASSERT_EQ(pop.at("sites").size(), 2u);
  int identities = 0;
  for (const auto& site : pop.at("sites")) {
    EXPECT_GT(site.at("images").get<int>(), 0);
    identities += site.at("identities").get<int>();
  }
  EXPECT_EQ(identities, 12);  // data.ids 24: half train (split among the sites), half test
  EXPECT_EQ(pop.at("test").at("identities"), 12);
  EXPECT_GT(pop.at("test").at("queries").get<int>(), 0);

  ASSERT_EQ(s.at("runs").size(), 1u);
  const auto& run = s.at("runs")[0];
  ASSERT_EQ(run.at("rounds").size(), 2u);
  for (int r = 0; r < 2; ++r) {
    const auto& round = run.at("rounds")[r];
    EXPECT_EQ(round.at("round"), r + 1);
    for (const char* key : {"mAP", "rank1", "centroid_mAP", "centroid_rank1"}) {
      const double v = round.at(key);
      EXPECT_GT(v, 0.0) << key;  // a trained model retrieves something on 12 test identities
      EXPECT_LE(v, 1.0) << key;
    }
    // The centroid figures name their protocol: the default, centroids-reid's.
    EXPECT_EQ(round.at("centroid_protocol"), "reference");
    EXPECT_EQ(round.at("accepted").size(), 2u);
    EXPECT_TRUE(round.at("rejected").empty());
  }
  // Image DP at epsilon 1e5 keeps the crops recognisable but not identical.
  EXPECT_GT(run.at("deid_ssim").get<double>(), 0.2);
  EXPECT_LT(run.at("deid_ssim").get<double>(), 0.99);

  const auto& attack = s.at("attack");
  EXPECT_EQ(attack.at("method"), "idlg");
  EXPECT_EQ(attack.at("model"), "lenet");
  EXPECT_EQ(attack.at("mode"), "fedsgd");
  ASSERT_EQ(attack.at("attacks").size(), 1u);
  const auto& a = attack.at("attacks")[0];
  for (const char* key : {"label_correct", "mse_raw", "psnr_raw", "ssim_raw", "mse_deid",
                          "psnr_deid", "ssim_deid", "iterations"})
    EXPECT_TRUE(a.contains(key)) << key;
  EXPECT_FALSE(a.contains("seconds"));  // wall time lives in timing.json, not the summary
  // iDLG reads the label off the gradient: always right for a single image.
  EXPECT_TRUE(a.at("label_correct").get<bool>());
  EXPECT_EQ(attack.at("label_accuracy"), 1.0);
  // What the attacker recovers is the image the site trained on (the DP-noised one), which is
  // nearer to it than to the raw crop.
  EXPECT_LT(a.at("mse_deid").get<double>(), a.at("mse_raw").get<double>());
}

TEST_F(TinySimulationTest, WritesEveryOutputFile) {
  for (const char* name : {"config.yaml", "metrics.jsonl", "summary.json", "summary.md",
                           "report.html", "timing.json", "plots/map_per_round.png",
                           "grids/deidentified.png"})
    EXPECT_TRUE(fs::exists(out() / name)) << name;
  EXPECT_EQ(result_->report, out() / "report.html");
  // metrics.jsonl: one line per completed round, tagged with its run.
  std::istringstream lines(util::read_file(out() / "metrics.jsonl"));
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    const auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j.at("round"), ++n);
    EXPECT_TRUE(j.contains("run"));
  }
  EXPECT_EQ(n, 2);
  // The resolved config reads back to the same simulation.
  // (the first line is a comment naming the file it was resolved from)
  const SimConfig back = load_sim_config(out() / "config.yaml");
  const auto body = [](const std::string& text) { return text.substr(text.find('\n')); };
  EXPECT_EQ(body(format_sim_config(back)), body(util::read_file(out() / "config.yaml")));
  // report.html is one self-contained page: images inline, nothing fetched.
  const std::string html = util::read_file(out() / "report.html");
  EXPECT_THAT(html, HasSubstr("data:image/png;base64,"));
  EXPECT_THAT(html, ::testing::Not(HasSubstr("src=\"http")));
  EXPECT_THAT(util::read_file(out() / "summary.md"), HasSubstr("| Rank-1 |"));
  EXPECT_FALSE(result_->summary_table.empty());
  EXPECT_GT(read_json(out() / "timing.json").at("wall_seconds").get<double>(), 0.0);
  int strips = 0;
  for (const auto& e : fs::directory_iterator(out() / "attack"))
    strips += e.path().extension() == ".png";
  EXPECT_EQ(strips, 1);
}

TEST_F(TinySimulationTest, TheSameSeedsGiveTheSameSummaryAndResumeReusesCompletedWork) {
  const SimulationResult again = run_simulation(*config_, dir_->path() / "b", {});
  EXPECT_EQ(again.summary.dump(2), result_->summary.dump(2));
  EXPECT_EQ(util::read_file(dir_->path() / "b" / "metrics.jsonl"),
            util::read_file(out() / "metrics.jsonl"));

  // An OUT in use needs --resume; with it, the completed federation is reused as it was.
  EXPECT_THAT(testing::error_of([&] { run_simulation(*config_, out(), {}); }),
              HasSubstr("--resume"));
  SimulationOptions resume;
  resume.resume = true;
  const SimulationResult resumed = run_simulation(*config_, out(), resume);
  EXPECT_EQ(resumed.summary, result_->summary);
  // ... but never over another config's work.
  SimConfig other = *config_;
  other.seed = 2;
  EXPECT_THAT(testing::error_of([&] { run_simulation(other, out(), resume); }),
              HasSubstr("another config"));
}

// Every kind of fault at once: the summary says what the aggregator did with each.
TEST(SimulationFaultsTest, TheAggregatorsAnswerToEachFaultIsRecorded) {
  testing::TempDir dir;
  const SimConfig c = parse_sim_config(R"(
name: faults-test
seed: 3
threads: 2
data: {profile: ../tiny.yaml, ids: 32, images_per_id: 4}  # 4 train identities per site
partition: {kind: identity, sites: 4}
federation:
  model: ../train/tiny.yaml
  rounds: 2
  local_epochs: 1
  min_updates: 1
  round_timeout: 60
  site_timeout: 3
  max_delta_norm: 500
deid: {method: none}
faults:
  - {kind: nan, site: site-1, from_round: 1, until_round: 1}
  - {kind: scale, site: site-2, from_round: 2, factor: 100000}
  - {kind: straggler, site: site-3, from_round: 1, until_round: 1, delay: 1}
  - {kind: dropout, site: site-4, from_round: 2}
)",
                                       testing::kSimDir / "faults-test.yaml");
  const SimulationResult r = run_simulation(c, dir.path(), {});
  const auto& faults = r.summary.at("runs")[0].at("faults");
  ASSERT_EQ(faults.size(), 4u);
  const auto outcome = [&](int fault, int round) {
    return faults[fault].at("aggregator").at(std::to_string(round)).get<std::string>();
  };
  EXPECT_THAT(outcome(0, 1), HasSubstr("non_finite"));
  EXPECT_EQ(outcome(0, 2), "accepted");  // healthy again
  EXPECT_EQ(outcome(1, 1), "accepted");
  // Above the absolute bound (500): clipped to it (over_bound: clip), its BatchNorm statistics
  // its own.
  EXPECT_EQ(outcome(1, 2), "accepted (clipped)");
  EXPECT_EQ(outcome(2, 1), "accepted");  // slow but within the round's timeout
  EXPECT_EQ(outcome(3, 1), "accepted");
  EXPECT_THAT(outcome(3, 2), ::testing::AnyOf("silent", "not asked"));
  // The global model stayed finite through all of it.
  for (const auto& round : r.summary.at("runs")[0].at("rounds"))
    EXPECT_TRUE(std::isfinite(round.at("mAP").get<double>()));
}

}  // namespace
}  // namespace ppreid::sim
