// Runs the real `ppreid` binary: exit codes and messages are part of the user interface.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/util/atomic_file.h"
#include "tests/support/centroid_reference_case.h"
#include "tests/support/run_cli.h"
#include "tests/support/temp_dir.h"

namespace ppreid {
namespace {

using testing::RunResult;

RunResult run(const std::string& args) { return testing::run_ppreid(args); }

struct CliCase {
  std::string args;
  int exit_code;
  std::string expected;  // substring of the output
};

class CliTest : public ::testing::TestWithParam<CliCase> {};

TEST_P(CliTest, ExitCodeAndMessage) {
  RunResult r = run(GetParam().args);
  EXPECT_EQ(r.exit_code, GetParam().exit_code) << r.out;
  EXPECT_NE(r.out.find(GetParam().expected), std::string::npos) << r.out;
}

INSTANTIATE_TEST_SUITE_P(
    Table, CliTest,
    ::testing::Values(
        CliCase{"--help", 0, "synth"},
        CliCase{"synth --help", 0, "--images-per-id"},
        CliCase{"version", 0, "LibTorch"},
        CliCase{"", 2, "error:"},
        CliCase{"--bogus version", 2, "--bogus"},
        CliCase{"nosuchcommand", 2, "nosuchcommand"},
        CliCase{"synth --out x --ids abc", 2, "--ids"},
        CliCase{"synth --out x --ids 0", 2, "--ids"},
        CliCase{"synth --ids 10", 2, "--out"},
        CliCase{"--log-level loud version", 2, "--log-level"},
        CliCase{"data inspect /nonexistent/ppreid-data", 1,
                "error: dataset directory '/nonexistent/ppreid-data' does not exist"},
        CliCase{"synth --out x --config no-such-profile", 1, "no profile named"},
        CliCase{"deid --method dp --epsilon 0 --in x --out y", 2, "--epsilon must be > 0 (got 0)"},
        CliCase{"deid --method dp --epsilon -2 --in x --out y", 2, "--epsilon must be > 0"},
        CliCase{"deid --method dp --pixel-bits 7 --in x --out y", 2, "--pixel-bits"},
        CliCase{"deid --method dp --color-bits 8 --in x --out y", 2, "--color-bits"},
        CliCase{"deid --method dp --calibration paper --color-bits 7 --in x --out y", 2,
                "L = 2 levels"},
        CliCase{"deid --method blur --epsilon 3 --in x --out y", 2, "--epsilon applies to"},
        CliCase{"deid --method dp --preset E --in x --out y", 2, "--preset"},
        CliCase{"deid --method smudge --in x --out y", 2, "--method"},
        CliCase{"deid --method dp --in /nonexistent/ppreid-in --out y", 1, "does not exist"},
        CliCase{"train --data x", 2, "--out"},
        CliCase{"train --data x --out y --world-size 2 --rank 2 --rendezvous h:1", 2,
                "--rank 2 is outside 0..1"},
        CliCase{"train --data x --out y --world-size 2", 2, "needs a rendezvous address"},
        CliCase{"train --data x --out y --world-size 2 --rank 1 --rendezvous h", 2, "HOST:PORT"},
        CliCase{"train --data x --out y --backend nccl", 2, "-DPPREID_WITH_NCCL=ON"},
        CliCase{"train --data x --out y --backend mpi", 2, "--backend"},
        CliCase{"train --data x --out y --dist-timeout 0", 2, "--dist-timeout"},
        CliCase{"site --config x --world-size 0", 2, "--world-size must be at least 1"},
        // A seeded site store is reproducible by anyone with the seed: refused without the
        // config's confirmation (the shipped config has none).
        CliCase{"site --config " PPREID_SOURCE_DIR "/configs/site.yaml --seed 3", 2,
                "unless '" PPREID_SOURCE_DIR "/configs/site.yaml' says "
                "deid.reproducible_for_experiments: true"},
        CliCase{"eval --json", 2, "either --model"},
        CliCase{"eval --model /nonexistent/ckpt --data x", 1, "not a ppreid checkpoint"},
        CliCase{"eval --features /nonexistent/feats", 1, "query.csv"},
        CliCase{"eval --features x --centroids --centroid-protocol paper", 2,
                "--centroid-protocol: paper not in {reference,strict,all-cameras}"},
        CliCase{"eval --features x --centroid-protocol strict", 2,
                "--centroid-protocol requires --centroids"},
        CliCase{"weights import x.pt --arch vgg --out y", 2, "--arch"},
        CliCase{"privacy", 2, "error:"},
        CliCase{"privacy pu-score --utility 0.6 --privacy 0.3", 0,
                "PU-score 0.6462  (S_u 0.6, S_p 0.3, I_u 1, I_p 1)"},
        CliCase{"privacy pu-score --utility 60 --privacy 0.3", 2,
                "--utility must be a fraction in [0, 1] (got 60)"},
        CliCase{"privacy pu-score --utility 0.6 --privacy 1.2", 2, "--privacy must be a fraction"},
        CliCase{"privacy pu-score --utility abc --privacy 0.3", 2, "--utility"},
        CliCase{"privacy pu-score --utility 0.6", 2, "--privacy"},
        CliCase{"privacy pu-score --utility 0.6 --privacy 0.3 --iu 1 --ip 1.5", 2,
                "--iu + --ip must be 2 (got 1 + 1.5 = 2.5)"},
        CliCase{"privacy pu-score --utility 0.6 --privacy 0.3 --ip 3", 2,
                "--ip must be in [0, 2] (--iu + --ip = 2), got 3"},
        CliCase{"privacy pu-score --utility 0.6 --privacy 0.3 --iu -1 --ip 3", 2,
                "--iu must be in [0, 2]"},
        CliCase{"privacy pu-score --utility 0.6 --privacy 0.3 --sweep 4 --iu 1", 2, "--sweep"},
        CliCase{"privacy pu-score --utility 0.6 --privacy 0.3 --sweep 0", 2, "--sweep"},
        CliCase{"privacy identity-attack --attacker x --raw y", 2, "--deid"},
        CliCase{"privacy identity-attack --attacker x --raw y --deid z --max-rank 0", 2,
                "--max-rank"},
        CliCase{"privacy identity-attack --attacker x --raw y --deid z --metric l1", 2, "--metric"},
        CliCase{"privacy identity-attack --attacker /nonexistent/ppreid-ckpt --raw y --deid z", 1,
                "attacker checkpoint directory '/nonexistent/ppreid-ckpt' does not exist"},
        CliCase{"pis --help", 0, "keygen"},
        CliCase{"pis train --out x", 2, "--data"},
        CliCase{"pis train --data /nonexistent/ppreid-in --out x --max-steps -1", 2, "--max-steps"},
        CliCase{"pis train --data /nonexistent/ppreid-in --out x --config tiny", 1, "does not exist"},
        CliCase{"deid --method pis --in x --out y", 2, "--model"},
        CliCase{"deid --method blur --model m --in x --out y", 2, "--model applies to --method pis"},
        CliCase{"deid --method blur --seed 3 --in x --out y", 2, "--seed applies to --method dp and pis"},
        CliCase{"deid --method pis --model m --one-time-key k --in x --out y", 2, "--key-file"},
        CliCase{"deid --method pis --model m --k 1 --in x --out y", 2, "--k"},
        CliCase{"deid --method pis --model m --one-time-key y/k --key-file kf --in x --out y", 2,
                "keep the key away from the data"},
        CliCase{"deid --method pis --model m --resume --in x --out y", 2, "--one-time-key"},
        CliCase{"pis", 2, "error:"},
        CliCase{"pis reveal --one-time-key x", 2, "--key-file"},
        CliCase{"pis keygen --out /nonexistent/ppreid-dir/k", 1, "does not exist"},
        CliCase{"pis reveal --one-time-key /nonexistent/x --key-file /nonexistent/k", 1,
                "pis keygen --out /nonexistent/k"}));

TEST(Cli, VersionJsonNamesEveryLibrary) {
  RunResult r = run("version --json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  for (const char* key : {"ppreid", "libtorch", "opencv", "zeromq", "openssl"})
    EXPECT_TRUE(j.contains(key)) << key;
}

TEST(Cli, ErrorsAreOneLine) {
  testing::TempDir dir;
  RunResult r = run("data inspect " + dir.path().string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out.rfind("error: ", 0), 0u) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
}

TEST(Cli, SynthThenInspectJson) {
  testing::TempDir dir;
  std::string out = (dir / "ds").string();
  RunResult gen = run("synth --config tiny --ids 8 --out " + out + " --seed 3");
  ASSERT_EQ(gen.exit_code, 0) << gen.out;
  RunResult inspect = run("data inspect " + out + " --json");
  ASSERT_EQ(inspect.exit_code, 0) << inspect.out;
  auto j = nlohmann::json::parse(inspect.out);
  EXPECT_EQ(j["splits"]["train"]["ids"], 4);
  EXPECT_EQ(j["splits"]["train"]["keypoint_coverage"], 1.0);
  EXPECT_EQ(j["attribute_coverage"], 1.0);
  EXPECT_EQ(j["municipalities"], 2);
  // A second run into the same directory is refused unless --force.
  RunResult again = run("synth --config tiny --ids 8 --out " + out);
  EXPECT_EQ(again.exit_code, 1) << again.out;
  EXPECT_EQ(run("synth --config tiny --ids 8 --force --out " + out).exit_code, 0);
}

TEST(Cli, DeidRefusesOutputInsideInputAndWritesNothing) {
  testing::TempDir dir;
  std::string in = (dir / "in").string();
  ASSERT_EQ(run("synth --config tiny --ids 8 --out " + in).exit_code, 0);
  RunResult r = run("deid --method dp --preset A --epsilon 10 --in " + in + " --out " + in + "/deid");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("inside --in"), std::string::npos) << r.out;
  EXPECT_FALSE(std::filesystem::exists(dir / "in" / "deid"));
  // The quality report is refused inside the release, and detectability needs a report.
  const std::string out = (dir / "out").string(), report = (dir / "quality.json").string();
  r = run("deid --method dp --preset B --epsilon 1e4 --in " + in + " --out " + out +
          " --report " + out + "/quality.json");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("--report"), std::string::npos) << r.out;
  r = run("deid --method dp --preset B --epsilon 1e4 --detectability --in " + in + " --out " + out);
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("needs --report"), std::string::npos) << r.out;
  EXPECT_FALSE(std::filesystem::exists(dir / "out" / "deid.json"));

  RunResult ok = run("deid --method dp --preset B --epsilon 1e4 --seed 3 --in " + in + " --out " +
                     out + " --report " + report);
  ASSERT_EQ(ok.exit_code, 0) << ok.out;
  EXPECT_NE(ok.out.find("\"private\": false"), std::string::npos) << "seeded runs warn: " << ok.out;
  auto j = nlohmann::json::parse(util::read_file(dir / "out" / "deid.json"));
  EXPECT_EQ(j["private"], false);
  EXPECT_FALSE(j.contains("seed"));
  EXPECT_FALSE(j["parameters"].contains("seed"));
  EXPECT_FALSE(j.contains("mean_ssim"));
  EXPECT_EQ(j["parameters"]["pixel_bits"], 1);
  EXPECT_LE(j["certified_epsilon_per_image"].get<double>(), 1e4);
  // Image DP releases no poses (they come from the raw images).
  EXPECT_FALSE(std::filesystem::exists(dir / "out" / "keypoints.csv"));
  auto q = nlohmann::json::parse(util::read_file(report));
  EXPECT_EQ(q["derived_from_raw_data"], true);
  EXPECT_LT(q["mean_ssim"].get<double>(), 1.0);
  EXPECT_EQ(q["images"].size(), q["images_measured"].get<size_t>());
}

TEST(Cli, EvalFeaturesRejectsMismatchedDimensionsAndNan) {
  testing::TempDir dir;
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir / name) << text;
  };
  write("query.csv", "1,0,0.1,0.2,0.3\n2,1,0.1,0.2,0.29\n");
  write("gallery.csv", "1,1,0.1,0.2\n2,0,0.3,0.2\n");
  RunResult r = run("eval --features " + dir.path().string() + " --json");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("has 3-d features but"), std::string::npos) << r.out;
  write("gallery.csv", "1,1,0.1,0.2,0.3\n2,0,nan,0.2,0.1\n");
  r = run("eval --features " + dir.path().string() + " --json");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("gallery.csv:2"), std::string::npos) << r.out;
  // Good files. Query 1 (pid 1, camera 0) finds pid 1 (camera 1) first: AP 1. Query 2 (pid 2,
  // camera 1) is nearest to the pid-1 image and finds its own second: AP 1/2. mAP 3/4.
  write("gallery.csv", "1,1,0.1,0.2,0.31\n2,0,0.3,0.2,0.1\n");
  r = run("eval --features " + dir.path().string() + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_DOUBLE_EQ(j["rank1"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(j["mAP"].get<double>(), 0.75);
  EXPECT_EQ(j["valid_queries"], 2);
}

TEST(Cli, EvalFeaturesCentroidsMatchesTheReference) {
  // `ppreid eval --features DIR --centroids --json` on the random case of
  // tests/reference/eval_centroids_reference.py: the default protocol gives the NumPy figures.
  testing::TempDir dir;
  const testing::CentroidReferenceCase c = testing::make_centroid_reference_case();
  reid::write_feature_csv(dir / "query.csv", c.query);
  reid::write_feature_csv(dir / "gallery.csv", c.gallery);
  RunResult r = run("eval --features " + dir.path().string() + " --centroids --json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  const auto& want = testing::kCentroidReference;
  EXPECT_EQ(j["retrieval"], "centroid");
  EXPECT_EQ(j["centroid_protocol"], "reference");
  EXPECT_EQ(j["valid_queries"].get<int>(), want.valid_queries);
  EXPECT_NEAR(j["mAP"].get<double>(), want.map, 1e-6);
  EXPECT_NEAR(j["mINP"].get<double>(), want.minp, 1e-6);
  EXPECT_NEAR(j["rank1"].get<double>(), want.cmc[0], 1e-6);
  EXPECT_NEAR(j["rank5"].get<double>(), want.cmc[4], 1e-6);
  EXPECT_NEAR(j["rank10"].get<double>(), want.cmc[9], 1e-6);
  // The strict protocol on the same files is another figure, and says so.
  r = run("eval --features " + dir.path().string() +
          " --centroids --centroid-protocol strict --json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto strict = nlohmann::json::parse(r.out);
  EXPECT_EQ(strict["centroid_protocol"], "strict");
  EXPECT_NE(strict["mAP"].get<double>(), j["mAP"].get<double>());
}

}  // namespace
}  // namespace ppreid
