#include "simulations/byzantine.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "core/util/atomic_file.h"
#include "simulations/report/table.h"
#include "simulations/simulation.h"
#include "tests/support/errors.h"
#include "tests/support/paths.h"
#include "tests/support/temp_dir.h"

namespace ppreid::sim {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;

SimConfig byzantine_config(const std::string& attacks, int sites, const std::string& hostile) {
  return parse_sim_config(
      "name: byz-test\n"
      "experiment: byzantine\n"
      "seed: 5\n"
      "threads: 2\n"
      "data: {profile: ../tiny.yaml, ids: " + std::to_string(8 * sites) + ", images_per_id: 4}\n"
      "partition: {kind: identity, sites: " + std::to_string(sites) + "}\n"
      "federation: {model: ../train/tiny.yaml, rounds: 1, round_timeout: 60, site_timeout: 5}\n"
      "deid: {method: none}\n"
      "byzantine:\n"
      "  attacks: " + attacks + "\n"
      "  hostile: " + hostile + "\n"
      "  strategies: [{name: fedavg}, {name: trimmed_mean, trim_fraction: 0.34}]\n",
      testing::kSimDir / "byz-test.yaml");
}

std::vector<std::string> ids(int n) {
  std::vector<std::string> out;
  for (int i = 1; i <= n; ++i) out.push_back("site-" + std::to_string(i));
  return out;
}

TEST(ByzantinePlanTest, OneRunPerStrategyWithoutAttackThenPerHostileCountAttackAndStrategy) {
  const SimConfig c =
      byzantine_config("[{kind: sign_flip}, {kind: scale, factor: 50}]", 5, "[1, 2]");
  const std::vector<ByzantineRun> plan = plan_byzantine_runs(c, ids(5));
  ASSERT_EQ(plan.size(), 2u + 2 * 2 * 2);
  EXPECT_EQ(plan[0].name, "no attack | fedavg");
  EXPECT_EQ(plan[1].name, "no attack | trimmed_mean(trim_fraction=0.34)");
  EXPECT_TRUE(plan[1].config.faults.empty());
  EXPECT_EQ(plan[1].config.strategy.kind, agg::StrategyKind::kTrimmedMean);
  EXPECT_EQ(plan[2].name, "sign_flip | 1 hostile | fedavg");
  EXPECT_EQ(plan[5].name, "scale x50 | 1 hostile | trimmed_mean(trim_fraction=0.34)");
  EXPECT_EQ(plan[5].attack, "scale x50");
  EXPECT_EQ(plan[5].strategy, "trimmed_mean(trim_fraction=0.34)");
  // The hostile sites are the last ones, hostile for the whole run.
  ASSERT_EQ(plan[5].config.faults.size(), 1u);
  EXPECT_EQ(plan[5].config.faults[0].site, "site-5");
  EXPECT_EQ(plan[5].config.faults[0].factor, 50.0);
  const ByzantineRun& two = plan.back();
  EXPECT_EQ(two.hostile, 2);
  ASSERT_EQ(two.config.faults.size(), 2u);
  EXPECT_EQ(two.config.faults[0].site, "site-4");
  EXPECT_EQ(two.config.faults[1].site, "site-5");
  EXPECT_EQ(two.config.faults[1].from_round, 1);
  EXPECT_EQ(two.config.faults[1].until_round, 0);

  // Counts the partition cannot hold are refused before anything runs (a municipality
  // partition's sites are only known here).
  EXPECT_THAT(testing::error_of([&] { plan_byzantine_runs(c, ids(2)); }),
              HasSubstr("2 hostile sites of the partition's 2 leave no honest site"));
  const SimConfig alie = byzantine_config("[{kind: alie}]", 5, "[3]");
  EXPECT_THAT(testing::error_of([&] { plan_byzantine_runs(alie, ids(5)); }),
              HasSubstr("majority"));
}

TEST(ByzantineSummaryTest, TalliesWhatTheAggregatorDidWithTheHostileAndTheHonestUpdates) {
  const SimConfig c = byzantine_config("[{kind: sample_lie, factor: 10}]", 3, "[1]");
  const std::vector<ByzantineRun> plan = plan_byzantine_runs(c, ids(3));
  ASSERT_EQ(plan.size(), 4u);
  FederationResult attacked;
  for (std::int64_t r = 1; r <= 2; ++r) {
    RoundSummary s;
    s.round = r;
    s.map = 0.25 * static_cast<double>(r);
    s.rank1 = 0.5;
    s.centroid_map = 0.3;
    s.centroid_rank1 = 0.6;
    s.centroid_protocol = "reference";
    s.accepted = {"site-1", "site-2"};
    if (r == 1) s.accepted.push_back("site-3");
    else s.rejected = {{"site-3", "norm_too_large: 5.2 > 3.1"}};
    s.capped = std::vector<std::string>{"site-3"};
    if (r == 2) s.clipped = std::vector<std::string>{"site-1"};
    attacked.rounds.push_back(s);
  }
  FederationResult quiet = attacked;
  const std::vector<const FederationResult*> results = {&quiet, &quiet, &attacked, nullptr};
  const nlohmann::json j =
      byzantine_summary(plan, results, {"", "", "", "trimmed_mean: too few updates"});
  EXPECT_EQ(j.at("hostile_sites").at("1"), nlohmann::json::array({"site-3"}));
  EXPECT_EQ(j.at("strategies"),
            nlohmann::json::array({"fedavg", "trimmed_mean(trim_fraction=0.34)"}));
  EXPECT_EQ(j.at("attacks"), nlohmann::json::array({"sample_lie x10"}));
  const auto& rows = j.at("rows");
  ASSERT_EQ(rows.size(), 4u);
  const auto& row = rows[2];
  EXPECT_EQ(row.at("attack"), "sample_lie x10");
  EXPECT_EQ(row.at("hostile"), 1);
  EXPECT_EQ(row.at("mAP"), 0.5);  // the final round's
  EXPECT_EQ(row.at("centroid_mAP"), 0.3);
  EXPECT_EQ(row.at("round"), 2);
  const auto& agg = row.at("aggregator");
  EXPECT_EQ(agg.at("hostile").at("accepted"), 1);
  EXPECT_EQ(agg.at("hostile").at("rejected"), 1);
  EXPECT_EQ(agg.at("hostile").at("capped"), 2);
  EXPECT_EQ(agg.at("honest").at("accepted"), 4);
  EXPECT_EQ(agg.at("honest").at("clipped"), 1);
  EXPECT_EQ(describe_aggregator_record(agg),
            "hostile 1/2 accepted, 2 capped, 1 rejected (norm_too_large); honest 4/4 accepted, "
            "1 clipped");
  // Without attack there is no hostile site to speak of.
  EXPECT_EQ(describe_aggregator_record(rows[0].at("aggregator")),
            "honest 5/6 accepted, 1 clipped, 2 capped, 1 rejected (norm_too_large)");
  EXPECT_EQ(rows[3].at("error"), "trimmed_mean: too few updates");
  EXPECT_FALSE(rows[3].contains("mAP"));
}

// A whole byzantine experiment, as small as it gets: 3 sites, 1 round, 2 strategies, ALIE from
// the last site (the colluder waits on the honest sites' updates of the real federation). With 3
// updates, trim_fraction 0.34 trims one per side: the median, unlike FedAvg.
TEST(ByzantineExperimentTest, TheTableHoldsEveryRunsFinalMapBesideTheRunWithoutAttack) {
  testing::TempDir dir;
  const SimConfig c = byzantine_config("[{kind: alie}]", 3, "[1]");
  const SimulationResult r = run_simulation(c, dir.path(), {});
  const nlohmann::json& b = r.summary.at("byzantine");
  ASSERT_EQ(b.at("rows").size(), 4u);
  ASSERT_EQ(r.runs.size(), 4u);
  EXPECT_EQ(b.at("hostile_sites").at("1"), nlohmann::json::array({"site-3"}));
  // Every row's figures are its run's final round.
  for (std::size_t i = 0; i < 4; ++i) {
    const auto& row = b.at("rows")[i];
    SCOPED_TRACE(row.dump());
    ASSERT_FALSE(row.contains("error"));
    EXPECT_EQ(row.at("run"), r.runs[i].name);
    const RoundSummary& f = r.runs[i].final_round();
    EXPECT_EQ(f.round, 1);
    EXPECT_EQ(row.at("mAP").get<double>(), f.map);
    EXPECT_EQ(row.at("centroid_mAP").get<double>(), f.centroid_map);
    EXPECT_GT(f.map, 0.0);
    EXPECT_EQ(row.at("centroid_protocol"), "reference");
  }
  // The colluder's update reached the aggregator (and the fault trace says so).
  const FederationResult& attacked = r.runs[2];
  ASSERT_EQ(attacked.faults.size(), 1u);
  EXPECT_EQ(attacked.faults[0].fault.kind, FaultSpec::Kind::kAlie);
  EXPECT_EQ(attacked.faults[0].per_round.at(0).second, "accepted");
  EXPECT_EQ(b.at("rows")[2].at("aggregator").at("hostile").at("accepted"), 1);

  // The terminal table: attacks down, strategies across, cells "centroid / instance".
  auto cell = [&](std::size_t i) {
    const auto& row = b.at("rows")[i];
    return report::format_fixed(row.at("centroid_mAP"), 3) + " / " +
           report::format_fixed(row.at("mAP"), 3);
  };
  const std::string& table = r.summary_table;
  EXPECT_THAT(table, HasSubstr("Final mAP with 1 of 3 sites hostile (site-3)"));
  EXPECT_THAT(table, HasSubstr("| attack "));
  EXPECT_THAT(table, HasSubstr(" fedavg | trimmed_mean(trim_fraction=0.34) |"));
  const std::size_t none = table.find("| no attack ");
  const std::size_t alie = table.find("| alie ");
  ASSERT_NE(none, std::string::npos);
  ASSERT_NE(alie, std::string::npos);
  EXPECT_LT(none, alie);
  const std::string none_line = table.substr(none, table.find('\n', none) - none);
  const std::string alie_line = table.substr(alie, table.find('\n', alie) - alie);
  // Strategies in the header's order.
  auto cells = [](const std::string& a, const std::string& b) {
    return ::testing::MatchesRegex(".*\\| +" + a + " \\| +" + b + " \\|");
  };
  EXPECT_THAT(none_line, cells(cell(0), cell(1)));
  EXPECT_THAT(alie_line, cells(cell(2), cell(3)));
  const std::string md = util::read_file(dir.path() / "summary.md");
  EXPECT_THAT(md, HasSubstr("Final mAP with 1 of 3 sites hostile"));
  EXPECT_THAT(md, HasSubstr("hostile 1/1 accepted"));
  EXPECT_THAT(util::read_file(dir.path() / "report.html"), HasSubstr("Every run"));

  // Resumed: every completed federation is reused, the summary is the same.
  SimulationOptions resume;
  resume.resume = true;
  EXPECT_EQ(run_simulation(c, dir.path(), resume).summary, r.summary);
}

}  // namespace
}  // namespace ppreid::sim
