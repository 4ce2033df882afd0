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
}

TEST(SimConfigTest, TheResolvedConfigReadsBackToItself) {
  for (const char* name : {"tiny.yaml", "faults.yaml"}) {
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

}  // namespace
}  // namespace ppreid::sim
