#include "simulations/sim_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "core/util/atomic_file.h"
#include "tests/support/errors.h"
#include "tests/support/paths.h"
#include "tests/support/temp_dir.h"

namespace ppreid::sim {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;


// A minimal valid config; each case appends or replaces lines.
std::string base(const std::string& extra = "", const std::string& deid = "deid: {method: none}\n") {
  return "name: t\n"
         "data: {profile: ../tiny.yaml}\n"
         "partition: {kind: identity, sites: 2}\n"
         "federation: {model: ../train/tiny.yaml, rounds: 1}\n" +
         deid + extra;
}

SimConfig parse(const std::string& yaml) { return parse_sim_config(yaml, testing::kSimDir / "test.yaml"); }

TEST(SimConfigTest, TheShippedConfigsLoad) {
  int n = 0;
  for (const auto& entry : fs::directory_iterator(testing::kSimDir)) {
    SCOPED_TRACE(entry.path().string());
    const SimConfig c = load_sim_config(entry.path());
    ++n;
    EXPECT_FALSE(c.name.empty());
    EXPECT_GE(c.rounds, 1);
    // Every shipped config reads back from its resolved form.
    const SimConfig again = parse_sim_config(format_sim_config(c), testing::kSimDir / "resolved.yaml");
    EXPECT_EQ(again.methods.size(), c.methods.size());
  }
  EXPECT_GE(n, 5);
  const SimConfig tiny = load_sim_config(testing::kSimDir / "tiny.yaml");
  EXPECT_EQ(tiny.partition.sites, 2);
  EXPECT_EQ(tiny.rounds, 2);
  EXPECT_EQ(tiny.deid.method, "dp");
  EXPECT_EQ(*tiny.deid.preset, "B");
  EXPECT_TRUE(tiny.attack.enabled);
  EXPECT_EQ(tiny.site_threads(2), 1);  // 2 threads shared by 2 sites
  EXPECT_EQ(tiny.profile.synth.ids, 24);
  EXPECT_EQ(tiny.profile.synth.seed, 1u);  // the simulation seed reaches the generator
  const SimConfig faults = load_sim_config(testing::kSimDir / "faults.yaml");
  ASSERT_EQ(faults.faults.size(), 4u);
  EXPECT_EQ(faults.faults[0].kind, FaultSpec::Kind::kStraggler);
  EXPECT_EQ(faults.faults[0].delay.count(), 3000);
  EXPECT_TRUE(faults.faults[0].applies(2));
  EXPECT_FALSE(faults.faults[0].applies(3));
  EXPECT_TRUE(faults.faults[3].applies(99));  // until_round 0: to the end
  const SimConfig secure = load_sim_config(testing::kSimDir / "secure.yaml");
  EXPECT_TRUE(secure.secure_aggregation.enabled);
  EXPECT_EQ(secure.secure_aggregation.stage_timeout.count(), 5000);
  ASSERT_EQ(secure.faults.size(), 3u);
  EXPECT_EQ(secure.faults[1].stage, "masked");
  EXPECT_EQ(describe_fault(secure.faults[1]), "dropout before masked");
  EXPECT_EQ(secure.attack.secure_aggregation, "masked");
}

TEST(SimConfigTest, SecureAggregationMistakesNameTheKey) {
  const std::string base = "name: t\ndata: {profile: ../tiny.yaml}\ndeid: {method: none}\n"
                           "partition: {kind: identity, sites: 2}\n";
  EXPECT_THAT(testing::error_of([&] {
                parse(base + "federation: {model: ../train/tiny.yaml, strategy: {name: median}, "
                             "secure_aggregation: {enabled: true}}\n");
              }),
              HasSubstr("which secure aggregation hides"));
  EXPECT_THAT(testing::error_of([&] {
                parse(base + "federation: {model: ../train/tiny.yaml}\n"
                             "faults:\n  - {kind: nan, site: site-1, stage: masked}\n");
              }),
              HasSubstr("does not apply to kind nan"));
  EXPECT_THAT(testing::error_of([&] {
                parse(base + "federation: {model: ../train/tiny.yaml}\n"
                             "faults:\n  - {kind: dropout, site: site-1, stage: later}\n");
              }),
              HasSubstr("stage"));
}

TEST(SimConfigTest, TheResolvedConfigReadsBackToItself) {
  for (const char* name : {"tiny.yaml", "faults.yaml", "secure.yaml"}) {
    SCOPED_TRACE(name);
    const SimConfig c = load_sim_config(testing::kSimDir / name);
    const std::string once = format_sim_config(c);
    const SimConfig again = parse_sim_config(once, testing::kSimDir / "resolved.yaml");
    // The second rendering differs only in its first comment line (the source file).
    const std::string twice = format_sim_config(again);
    EXPECT_EQ(once.substr(once.find('\n')), twice.substr(twice.find('\n')));
    EXPECT_EQ(again.faults.size(), c.faults.size());
    EXPECT_EQ(again.profile.synth.ids, c.profile.synth.ids);
  }
}

TEST(SimConfigTest, ListsOfMethodsAndTheDpSweep) {
  const SimConfig pu = parse(base(
      "methods:\n  - {name: none, method: none}\n  - {name: blur L, method: blur, kernel: L}\n",
      "experiment: privacy-utility\n"));
  ASSERT_EQ(pu.methods.size(), 2u);
  EXPECT_EQ(pu.methods[1].name, "blur L");
  EXPECT_EQ(*pu.methods[1].spec.kernel, "L");
  const SimConfig dp = parse(base("dp_sweep: {presets: [A, C], epsilons: [10, 1000]}\n",
                                  "experiment: dp-sweep\n"));
  EXPECT_EQ(dp.dp_presets, (std::vector<std::string>{"A", "C"}));
  EXPECT_EQ(dp.dp_epsilons, (std::vector<double>{10, 1000}));
}

struct BadCase {
  const char* what;
  std::string yaml;
  const char* message;
};

TEST(SimConfigTest, CentroidProtocolDefaultsToTheReferenceAndReadsBack) {
  EXPECT_EQ(parse(base()).centroid_protocol, reid::CentroidProtocol::kReference);
  const SimConfig strict =
      parse("name: t\ndata: {profile: ../tiny.yaml}\npartition: {kind: identity, sites: 2}\n"
            "federation: {model: ../train/tiny.yaml, rounds: 1, centroid_protocol: strict}\n"
            "deid: {method: none}\n");
  EXPECT_EQ(strict.centroid_protocol, reid::CentroidProtocol::kStrict);
  EXPECT_EQ(parse(format_sim_config(strict)).centroid_protocol, reid::CentroidProtocol::kStrict);
}

TEST(SimConfigTest, MistakesAreNamedWithTheirKeyAndLine) {
  const std::vector<BadCase> cases = {
      {"no name", "data: {profile: ../tiny.yaml}\n", "key 'name'"},
      {"unknown experiment", base("experiment: magic\n"), "experiment"},
      {"typo", base("rouns: 3\n"), "rouns"},
      {"sites for camera", "name: t\ndata: {profile: ../tiny.yaml}\npartition: {kind: camera, "
                           "sites: 2}\nfederation: {model: ../train/tiny.yaml}\n",
       "partition.sites"},
      {"no sites for identity", "name: t\ndata: {profile: ../tiny.yaml}\npartition: {kind: "
                                "identity}\nfederation: {model: ../train/tiny.yaml}\n",
       "partition.sites"},
      {"missing model file", "name: t\ndata: {profile: ../tiny.yaml}\npartition: {kind: "
                             "identity, sites: 2}\nfederation: {model: nope.yaml}\n",
       "federation.model"},
      {"straggler without delay", base("faults:\n  - {kind: straggler, site: site-1}\n"),
       "faults.0.delay"},
      {"scale without factor", base("faults:\n  - {kind: scale, site: site-1}\n"),
       "faults.0.factor"},
      {"faults need threads", base("runner: processes\nfaults:\n  - {kind: nan, site: site-1}\n"),
       "runner: threads"},
      {"privacy-utility without methods", base("experiment: privacy-utility\n"), "methods"},
      {"dp-sweep without epsilons", base("experiment: dp-sweep\n"), "epsilons"},
      {"bad preset", base("experiment: dp-sweep\ndp_sweep: {presets: [E], epsilons: [1]}\n"),
       "'E'"},
      {"pis without a model", base("", "deid: {method: pis}\n"), "pis.model"},
      {"method parameter of another method", base("", "deid: {method: blur, epsilon: 3}\n"),
       "epsilon"},
      {"duplicate method name",
       base("experiment: privacy-utility\nmethods:\n  - {name: a, method: none}\n  - {name: a, "
            "method: none}\n"),
       "used twice"},
      {"methods not a list", base("experiment: privacy-utility\nmethods: {name: a}\n"),
       "expected a list"},
      {"unknown centroid protocol",
       "name: t\ndata: {profile: ../tiny.yaml}\npartition: {kind: identity, sites: 2}\n"
       "federation: {model: ../train/tiny.yaml, centroid_protocol: paper}\ndeid: {method: none}\n",
       "key 'federation.centroid_protocol': 'paper' is not one of: reference, strict, "
       "all-cameras"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    EXPECT_THAT(testing::error_of([&] { parse(c.yaml); }), HasSubstr(c.message));
  }
}

// The byzantine experiment's section: attacks with their parameters, hostile counts, strategies.
std::string byzantine(const std::string& section, const std::string& sites = "7") {
  return "name: t\nexperiment: byzantine\ndata: {profile: ../tiny.yaml}\n"
         "partition: {kind: identity, sites: " + sites + "}\n"
         "federation: {model: ../train/tiny.yaml, rounds: 1}\n"
         "byzantine:\n" + section;
}

TEST(SimConfigTest, TheByzantineSectionReadsEveryAttackAndReadsBack) {
  const SimConfig c = parse(byzantine(
      "  attacks:\n"
      "    - {kind: sign_flip}\n"
      "    - {kind: sign_flip, factor: 3}\n"
      "    - {kind: scale, factor: 100}\n"
      "    - {kind: gaussian, sigma: 0.5}\n"
      "    - {kind: alie}\n"
      "    - {kind: alie, z: 1.5}\n"
      "    - {kind: label_flip}\n"
      "    - {kind: sample_lie, factor: 10}\n"
      "  hostile: [1, 3]\n"
      "  strategies: [{name: fedavg}, {name: trimmed_mean, trim_fraction: 0.3}, {name: median}]\n"));
  EXPECT_EQ(c.experiment, Experiment::kByzantine);
  const ByzantineSection& b = c.byzantine;
  std::vector<std::string> names;
  for (const auto& a : b.attacks) names.push_back(describe_fault(a));
  EXPECT_EQ(names, (std::vector<std::string>{"sign_flip", "sign_flip x3", "scale x100",
                                             "gaussian sigma=0.5", "alie", "alie z=1.5",
                                             "label_flip", "sample_lie x10"}));
  EXPECT_EQ(b.attacks[0].factor, 1.0);  // sign_flip's default
  EXPECT_FALSE(b.attacks[4].z.has_value());  // the paper's z, computed per run
  for (const auto& a : b.attacks) EXPECT_TRUE(a.site.empty());
  EXPECT_EQ(b.hostile, (std::vector<int>{1, 3}));
  ASSERT_EQ(b.strategies.size(), 3u);
  EXPECT_EQ(b.strategies[0].name, "fedavg");
  EXPECT_EQ(b.strategies[1].name, "trimmed_mean(trim_fraction=0.3)");
  EXPECT_DOUBLE_EQ(b.strategies[1].config.trim_fraction, 0.3);
  // The resolved config reads back to the same experiment.
  const std::string once = format_sim_config(c);
  const SimConfig again = parse(once);
  const std::string twice = format_sim_config(again);
  EXPECT_EQ(once.substr(once.find('\n')), twice.substr(twice.find('\n')));
  ASSERT_EQ(again.byzantine.attacks.size(), b.attacks.size());
  EXPECT_EQ(*again.byzantine.attacks[5].z, 1.5);
  EXPECT_EQ(again.byzantine.strategies[1].name, b.strategies[1].name);
}

TEST(SimConfigTest, ByzantineFaultsInTheFaultsListAndTheirMistakes) {
  const SimConfig c = parse(base(
      "faults:\n  - {kind: gaussian, site: site-2, sigma: 0.1, from_round: 2}\n"
      "  - {kind: label_flip, site: site-1}\n  - {kind: alie, site: site-1, z: 2}\n"));
  ASSERT_EQ(c.faults.size(), 3u);
  EXPECT_EQ(c.faults[0].kind, FaultSpec::Kind::kGaussian);
  EXPECT_EQ(c.faults[0].sigma, 0.1);
  EXPECT_EQ(c.faults[0].from_round, 2);
  EXPECT_EQ(c.faults[1].kind, FaultSpec::Kind::kLabelFlip);
  EXPECT_EQ(*c.faults[2].z, 2.0);
  EXPECT_EQ(parse(format_sim_config(c)).faults[0].sigma, 0.1);

  const std::string ok_attacks = "  attacks: [{kind: sign_flip}]\n";
  const std::string ok_strategies = "  strategies: [{name: fedavg}]\n";
  const std::vector<BadCase> cases = {
      {"unknown attack", byzantine("  attacks:\n    - {kind: bribe}\n" + ok_strategies),
       "test.yaml:8: key 'byzantine.attacks.0.kind': 'bribe' is not one of: scale, sign_flip, "
       "gaussian, alie, label_flip, sample_lie"},
      {"a fault is no attack", byzantine("  attacks: [{kind: dropout}]\n" + ok_strategies),
       "'dropout' is a fault, not a Byzantine attack"},
      {"no attacks", byzantine(ok_strategies), "byzantine.attacks"},
      {"no strategies", byzantine(ok_attacks), "byzantine.strategies"},
      {"unknown strategy", byzantine(ok_attacks + "  strategies: [{name: fedmagic}]\n"),
       "byzantine.strategies.0.name"},
      {"strategy parameter of another strategy",
       byzantine(ok_attacks + "  strategies: [{name: median, trim_fraction: 0.2}]\n"),
       "does not apply to strategy 'median'"},
      {"strategy listed twice",
       byzantine(ok_attacks + "  strategies: [{name: median}, {name: median}]\n"),
       "listed twice"},
      {"attack listed twice",
       byzantine("  attacks: [{kind: scale, factor: 5}, {kind: scale, factor: 5}]\n" +
                 ok_strategies),
       "'scale x5' is listed twice"},
      {"as many hostile as sites",
       byzantine(ok_attacks + ok_strategies + "  hostile: [1, 7]\n"),
       "key 'byzantine.hostile': 7 hostile sites of 7 leave no honest site"},
      {"no hostile site", byzantine(ok_attacks + ok_strategies + "  hostile: [0]\n"), ">= 1"},
      {"unknown key", byzantine(ok_attacks + ok_strategies + "  hostiles: [1]\n"),
       "byzantine.hostiles"},
      {"sigma on scale",
       byzantine("  attacks: [{kind: scale, factor: 2, sigma: 1}]\n" + ok_strategies),
       "key 'byzantine.attacks.0.sigma': does not apply to kind scale"},
      {"gaussian without sigma", byzantine("  attacks: [{kind: gaussian}]\n" + ok_strategies),
       "byzantine.attacks.0.sigma"},
      {"sample_lie without factor",
       byzantine("  attacks: [{kind: sample_lie}]\n" + ok_strategies),
       "byzantine.attacks.0.factor"},
      {"sample_lie claiming nothing",
       byzantine("  attacks: [{kind: sample_lie, factor: 0}]\n" + ok_strategies), "> 0"},
      {"the site is chosen by the experiment",
       byzantine("  attacks: [{kind: sign_flip, site: site-1}]\n" + ok_strategies),
       "byzantine.attacks.0.site"},
      {"byzantine section in a federation", base("byzantine: {hostile: [1]}\n"),
       "belongs to experiment byzantine"},
      {"faults in a byzantine experiment",
       byzantine(ok_attacks + ok_strategies) + "faults:\n  - {kind: nan, site: site-1}\n",
       "byzantine.attacks"},
      {"byzantine needs threads", "runner: processes\n" + byzantine(ok_attacks + ok_strategies),
       "runner: threads"},
      {"label_flip from a later round",
       base("faults:\n  - {kind: label_flip, site: site-1, from_round: 2}\n"),
       "faults.0.from_round"},
      {"delay on a nan fault", base("faults:\n  - {kind: nan, site: site-1, delay: 2}\n"),
       "key 'faults.0.delay': does not apply to kind nan"},
  };
  for (const auto& bad : cases) {
    SCOPED_TRACE(bad.what);
    EXPECT_THAT(testing::error_of([&] { parse(bad.yaml); }), HasSubstr(bad.message));
  }
}

}  // namespace
}  // namespace ppreid::sim
