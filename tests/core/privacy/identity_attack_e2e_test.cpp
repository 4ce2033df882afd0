// The identity attack end to end on a tiny synthetic dataset with an untrained tiny attacker:
// the C++ entry point and the `ppreid privacy identity-attack` command.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/data/dataset.h"
#include "core/data/synth/generator.h"
#include "core/privacy/identity_attack.h"
#include "core/reid/checkpoint.h"
#include "core/reid/features.h"
#include "core/util/error.h"
#include "tests/support/datasets.h"
#include "tests/support/run_cli.h"
#include "tests/support/synth.h"
#include "tests/support/renamed_copy.h"
#include "tests/support/temp_dir.h"

namespace ppreid::privacy {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::run_ppreid;
using testing::RunResult;

using testing::load_train;

// A copy whose file names are the raw ones but whose pixels are those of the image half the
// train split away, i.e. of another identity: a full identity shift. Returns the table of what
// each label then holds, label -> {label, identities whose pixels carry it} (original first,
// then "partners", as PIS reports its mixes).
std::map<int, std::vector<int>> write_shifted_copy(const data::Dataset& raw, const fs::path& out) {
  fs::create_directories(out / "bounding_box_train");
  std::map<int, std::vector<int>> table;
  const size_t n = raw.train.size();
  for (size_t i = 0; i < n; ++i) {
    const data::ImageRecord& pixels = raw.train[(i + n / 2) % n];
    fs::copy_file(raw.absolute(pixels), out / raw.train[i].path);
    std::vector<int>& hits = table[raw.train[i].pid];
    if (hits.empty()) hits.push_back(raw.train[i].pid);
    if (std::find(hits.begin(), hits.end(), pixels.pid) == hits.end()) hits.push_back(pixels.pid);
  }
  return table;
}

class IdentityAttackE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    // 16 identities: 8 train identities, the targets.
    data::synth::generate(testing::small_synth(16, 3, 6, 64, 32, 21), *dir_ / "raw");
    raw_ = new data::Dataset(load_train(*dir_ / "raw"));
    renaming_ = new std::map<int, std::vector<int>>(
        testing::write_renamed_copy(*raw_, *dir_ / "renamed"));
    shift_ = new std::map<int, std::vector<int>>(write_shifted_copy(*raw_, *dir_ / "shifted"));

    // An untrained attacker, saved as a checkpoint like `ppreid train` writes one. Untrained
    // features rank the other cameras' images of a person at about chance level on this data,
    // so the tests below check counts, equalities and exact-pixel leaks, not small mAP gaps.
    torch::manual_seed(4);
    reid::CheckpointInfo info;
    info.backbone.arch = "resnet_tiny";
    info.num_classes = 10;
    info.height = 64;
    info.width = 32;
    reid::ReidModel model(reid::ModelOptions{info.backbone, info.num_classes, true});
    info.feature_dim = model->feature_dim();
    reid::save_checkpoint(*dir_ / "attacker", model, info);
  }
  static void TearDownTestSuite() {
    delete shift_;
    delete renaming_;
    delete raw_;
    delete dir_;
  }

  static IdentityAttackResult attack(const std::string& deid, const HitPidsFn& hit_pids) {
    reid::CheckpointInfo info;
    reid::ReidModel attacker = reid::load_checkpoint_model(*dir_ / "attacker", &info);
    IdentityAttackOptions options;
    options.loader.workers = 1;
    return run_identity_attack(attacker, reid::test_transform(info), *raw_,
                               load_train(*dir_ / deid), hit_pids, options);
  }

  // Queries the attack must make: one per (train identity, camera) of the raw train split,
  // counted here independently of select_attack_queries.
  static int expected_queries() {
    std::set<std::pair<int, int>> pairs;
    for (const data::ImageRecord& r : raw_->train) pairs.insert({r.pid, r.camid});
    return static_cast<int>(pairs.size());
  }

  static testing::TempDir* dir_;
  static data::Dataset* raw_;
  static std::map<int, std::vector<int>>* renaming_;
  static std::map<int, std::vector<int>>* shift_;
};
testing::TempDir* IdentityAttackE2E::dir_ = nullptr;
data::Dataset* IdentityAttackE2E::raw_ = nullptr;
std::map<int, std::vector<int>>* IdentityAttackE2E::renaming_ = nullptr;
std::map<int, std::vector<int>>* IdentityAttackE2E::shift_ = nullptr;

TEST_F(IdentityAttackE2E, RawCopyOneQueryPerIdentityAndCamera) {
  IdentityAttackResult same = attack("raw", same_pid);
  EXPECT_EQ(raw_->num_train_ids, 8);
  EXPECT_EQ(same.total_queries, expected_queries());
  EXPECT_EQ(same.target_ids, 8);
  EXPECT_EQ(same.gallery_images, static_cast<int>(raw_->train.size()));
  EXPECT_EQ(same.valid_queries, same.total_queries);  // every identity is in >= 2 cameras
  EXPECT_GT(same.map, 0.0);
  EXPECT_LE(same.map, 1.0);
}

TEST_F(IdentityAttackE2E, ShiftedCopyLeaksThroughItsPartners) {
  // Every query's own pixels are in the shifted copy under another label. Read as a method that
  // keeps identities, that copy leaks nothing about the query's identity; with the table of
  // partners, the copy of the query's pixels (distance 0) is a hit and is not removed (its
  // original label is another identity), so every query finds a hit first.
  IdentityAttackResult plain = attack("shifted", same_pid);
  IdentityAttackResult partners = attack("shifted", hit_pids_from_table(*shift_, "shift"));
  EXPECT_EQ(partners.total_queries, expected_queries());
  EXPECT_EQ(partners.valid_queries, partners.total_queries);
  EXPECT_EQ(partners.rank1, 1.0);
  EXPECT_LT(plain.rank1, 1.0);
  EXPECT_GT(partners.map, plain.map);
}

TEST_F(IdentityAttackE2E, RenamedCopyNeedsItsMapping) {
  IdentityAttackResult same = attack("raw", same_pid);
  // With the table new -> original the renamed copy is the raw copy again.
  IdentityAttackResult mapped = attack("renamed", hit_pids_from_table(*renaming_, "renaming"));
  EXPECT_EQ(mapped.total_queries, same.total_queries);
  EXPECT_EQ(mapped.valid_queries, same.valid_queries);
  EXPECT_NEAR(mapped.map, same.map, 1e-12);
  EXPECT_EQ(mapped.rank1, same.rank1);
  // Without it no de-identified image belongs to a target identity.
  try {
    attack("renamed", same_pid);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("nothing to attack"));
  }
}

TEST_F(IdentityAttackE2E, CommandPrintsJsonAndRejectsBadInput) {
  const std::string attacker = (*dir_ / "attacker").string(), raw = (*dir_ / "raw").string();
  RunResult r = run_ppreid("--log-level off privacy identity-attack --attacker " + attacker +
                           " --raw " + raw + " --deid " + raw + " --max-rank 3 --json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  nlohmann::json j = nlohmann::json::parse(r.out);
  for (const char* key : {"mAP", "rank1", "rank5"}) {
    EXPECT_GE(j.at(key).get<double>(), 0.0) << key;
    EXPECT_LE(j.at(key).get<double>(), 1.0) << key;
  }
  EXPECT_EQ(j["total_queries"], expected_queries());
  EXPECT_EQ(j["valid_queries"], expected_queries());
  EXPECT_EQ(j["target_ids"], 8);
  EXPECT_EQ(j["cmc"].size(), 3u);
  // The command and the C++ entry point agree.
  EXPECT_NEAR(j["mAP"].get<double>(), attack("raw", same_pid).map, 1e-12);

  RunResult text = run_ppreid("--log-level off privacy identity-attack --attacker " + attacker +
                              " --raw " + raw + " --deid " + raw);
  ASSERT_EQ(text.exit_code, 0) << text.out;
  EXPECT_THAT(text.out, HasSubstr("identity attack T_p"));

  RunResult bad = run_ppreid("privacy identity-attack --attacker " + attacker + " --raw " + raw +
                             " --deid " + raw + " --max-rank 0");
  EXPECT_EQ(bad.exit_code, 2) << bad.out;
  EXPECT_THAT(bad.out, HasSubstr("--max-rank"));
  const std::string missing = (*dir_ / "no-such-deid").string();
  RunResult gone = run_ppreid("privacy identity-attack --attacker " + attacker + " --raw " + raw +
                              " --deid " + missing);
  EXPECT_EQ(gone.exit_code, 1) << gone.out;
  EXPECT_THAT(gone.out, HasSubstr("'" + missing + "' does not exist"));
  RunResult renamed = run_ppreid("privacy identity-attack --attacker " + attacker + " --raw " +
                                 raw + " --deid " + (*dir_ / "renamed").string());
  EXPECT_EQ(renamed.exit_code, 1) << renamed.out;
  EXPECT_THAT(renamed.out, HasSubstr("error: nothing to attack"));
}

TEST(PuScoreCommand, JsonAndOneWeightFixesTheOther) {
  RunResult r = run_ppreid("privacy pu-score --utility 0.6 --privacy 0.3 --json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_DOUBLE_EQ(j["pu_score"].get<double>(), 42.0 / 65);
  EXPECT_EQ(j["I_u"], 1.0);
  r = run_ppreid("privacy pu-score --utility 0.6 --privacy 0.3 --ip 2 --json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["I_u"], 0.0);
  EXPECT_DOUBLE_EQ(j["pu_score"].get<double>(), 0.7);
  r = run_ppreid("privacy pu-score --utility 0.6 --privacy 0.3 --sweep 4 --json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["sweep"].size(), 5u);
  EXPECT_DOUBLE_EQ(j["sweep"][0]["pu_score"].get<double>(), 0.6);
  EXPECT_DOUBLE_EQ(j["sweep"][4]["pu_score"].get<double>(), 0.7);
}

}  // namespace
}  // namespace ppreid::privacy
