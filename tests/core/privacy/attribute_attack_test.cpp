// The attribute attack (PIS paper sec. 4.1): hand-computed metrics, the classifier on a tiny
// synthetic dataset (deterministic, learns), evaluation against the original identities, and the
// `ppreid privacy attribute-attack` command.
#include "core/privacy/attribute_attack.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
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
#include "core/util/error.h"
#include "tests/support/datasets.h"
#include "tests/support/errors.h"
#include "tests/support/run_cli.h"
#include "tests/support/synth.h"
#include "tests/support/renamed_copy.h"
#include "tests/support/temp_dir.h"

namespace ppreid::privacy {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::error_of;
using testing::run_ppreid;
using testing::RunResult;
using Codes = std::vector<int>;

// ---------------------------------------------------------------------------------------------
// Metrics, computed by hand

TEST(AttributeAttackMetrics, AttackedAttributesAreGenderHairAge) {
  const auto& attrs = attacked_attributes();
  ASSERT_EQ(attrs.size(), 3u);
  data::Attributes a;
  a.gender = 1;
  a.hair_length = 0;
  a.age_group = 3;
  EXPECT_EQ(attrs[0].name, "gender");
  EXPECT_EQ(attrs[0].classes, 2);
  EXPECT_EQ(attrs[0].code(a), 1);
  EXPECT_EQ(attrs[1].name, "hair_length");
  EXPECT_EQ(attrs[1].classes, 2);
  EXPECT_EQ(attrs[1].code(a), 0);
  EXPECT_EQ(attrs[2].name, "age_group");
  EXPECT_EQ(attrs[2].classes, 4);
  EXPECT_EQ(attrs[2].code(a), 3);
}

TEST(AttributeAttackMetrics, ConfusionMatrixRowsAreTruth) {
  EXPECT_EQ(confusion_matrix({0, 0, 1, 1, 2}, {0, 1, 1, 1, 0}, 3),
            (std::vector<Codes>{{1, 1, 0}, {0, 2, 0}, {1, 0, 0}}));
  EXPECT_EQ(confusion_matrix({}, {}, 2), (std::vector<Codes>{{0, 0}, {0, 0}}));
  EXPECT_EQ(confusion_matrix({1}, {0}, 2), (std::vector<Codes>{{0, 0}, {1, 0}}));
}

TEST(AttributeAttackMetrics, ConfusionMatrixRejectsBadInput) {
  EXPECT_THAT(error_of([] { confusion_matrix({0, 1}, {0}, 2); }), HasSubstr("2 true codes but 1"));
  EXPECT_THAT(error_of([] { confusion_matrix({0}, {0}, 0); }), HasSubstr("at least 1"));
  EXPECT_THAT(error_of([] { confusion_matrix({0, 2}, {0, 0}, 2); }),
              HasSubstr("true code 2 at position 1 is outside [0, 2)"));
  EXPECT_THAT(error_of([] { confusion_matrix({0, 1}, {-1, 0}, 2); }),
              HasSubstr("predicted code -1 at position 0"));
}

struct F1Case {
  const char* name;
  Codes truth, predicted;
  int classes;
  double f1;
};

TEST(AttributeAttackMetrics, MacroF1ByHand) {
  const std::vector<F1Case> cases = {
      {"all correct", {0, 1, 1, 0}, {0, 1, 1, 0}, 2, 1.0},
      {"all correct, one class", {1, 1, 1}, {1, 1, 1}, 2, 1.0},
      {"all wrong", {0, 0, 1, 1}, {1, 1, 0, 0}, 2, 0.0},
      // c0: 2*1/(2+1) = 2/3, c1: 2*1/(1+2) = 2/3; classes 2 and 3 occur nowhere, not averaged.
      {"classes absent from both", {0, 0, 1}, {0, 1, 1}, 4, 2.0 / 3},
      // c0: 2*1/(2+2) = 1/2, c1: 2*2/(2+3) = 4/5, c2: 0 (true once, never predicted).
      {"three classes", {0, 0, 1, 1, 2}, {0, 1, 1, 1, 0}, 3, (0.5 + 0.8 + 0.0) / 3},
      // c0: 2*3/(4+3) = 6/7, c1: predicted once, never true: 0.
      {"class only predicted", {0, 0, 0, 0}, {0, 0, 0, 1}, 2, (6.0 / 7) / 2},
      // The majority guess: c0: 2*3/(3+4) = 6/7, c1: 0.
      {"majority guess", {0, 0, 0, 1}, {0, 0, 0, 0}, 2, (6.0 / 7) / 2},
  };
  for (const F1Case& c : cases)
    EXPECT_NEAR(macro_f1(c.truth, c.predicted, c.classes), c.f1, 1e-12) << c.name;
}

TEST(AttributeAttackMetrics, MacroF1RejectsBadInput) {
  EXPECT_THAT(error_of([] { macro_f1({}, {}, 2); }), HasSubstr("no samples"));
  EXPECT_THAT(error_of([] { macro_f1({0, 1, 1}, {0, 1}, 2); }), HasSubstr("3 true codes but 2"));
  EXPECT_THAT(error_of([] { macro_f1({0, 1}, {0, 2}, 2); }), HasSubstr("predicted code 2"));
  EXPECT_THAT(error_of([] { macro_f1({-1}, {0}, 2); }), HasSubstr("true code -1"));
}

TEST(AttributeAttackMetrics, ScoreAttributesByHand) {
  // Rows: gender, hair_length, age_group.
  const std::vector<Codes> truth = {{0, 0, 2}, {0, 1, 2}, {1, 1, 3}, {0, 0, 2}};
  const std::vector<Codes> predicted = {{0, 0, 2}, {1, 1, 2}, {1, 0, 0}, {0, 0, 2}};
  const AttributeScores s = score_attributes(truth, predicted);
  ASSERT_EQ(s.attributes.size(), 3u);
  const AttributeScore &g = s.attributes[0], &h = s.attributes[1], &a = s.attributes[2];
  EXPECT_EQ(g.name, "gender");
  EXPECT_EQ(h.name, "hair_length");
  EXPECT_EQ(a.name, "age_group");
  // gender t 0,0,1,0 p 0,1,1,0: c0 2*2/(3+2), c1 2*1/(1+2); majority 0: c0 6/7, c1 0.
  EXPECT_NEAR(g.f1, (0.8 + 2.0 / 3) / 2, 1e-12);
  EXPECT_NEAR(g.majority_f1, 3.0 / 7, 1e-12);
  // hair t 0,1,1,0 p 0,1,0,0: c0 2*2/(2+3), c1 2*1/(2+1); a 2-2 tie goes to code 0: c0 2*2/(2+4).
  EXPECT_NEAR(h.f1, (0.8 + 2.0 / 3) / 2, 1e-12);
  EXPECT_NEAR(h.majority_f1, 1.0 / 3, 1e-12);
  // age t 2,2,3,2 p 2,2,0,2: c0 0 (predicted only), c2 1, c3 0 (true only), c1 absent.
  EXPECT_NEAR(a.f1, 1.0 / 3, 1e-12);
  EXPECT_NEAR(a.majority_f1, 3.0 / 7, 1e-12);
  for (const AttributeScore& x : s.attributes) {
    EXPECT_EQ(x.samples, 4) << x.name;
    EXPECT_DOUBLE_EQ(x.accuracy, 0.75) << x.name;
  }
  EXPECT_NEAR(s.mean_f1, 0.6, 1e-12);  // (11/15 + 11/15 + 5/15) / 3
  EXPECT_NEAR(s.mean_majority_f1, 25.0 / 63, 1e-12);

  const nlohmann::json j = s.to_json();
  EXPECT_NEAR(j.at("mean_f1").get<double>(), 0.6, 1e-12);
  EXPECT_NEAR(j.at("mean_majority_f1").get<double>(), 25.0 / 63, 1e-12);
  EXPECT_EQ(j.at("samples"), 4);
  EXPECT_NEAR(j.at("attributes").at("age_group").at("f1").get<double>(), 1.0 / 3, 1e-12);
  EXPECT_DOUBLE_EQ(j.at("attributes").at("gender").at("accuracy").get<double>(), 0.75);
  EXPECT_NEAR(j.at("attributes").at("hair_length").at("majority_f1").get<double>(), 1.0 / 3,
              1e-12);
}

TEST(AttributeAttackMetrics, ScoreAttributesRejectsBadShapes) {
  EXPECT_THAT(error_of([] { score_attributes({}, {}); }), HasSubstr("no samples"));
  EXPECT_THAT(error_of([] { score_attributes({{0, 0, 0}}, {}); }),
              HasSubstr("1 true rows but 0 predicted"));
  EXPECT_THAT(error_of([] { score_attributes({{0, 0, 0}, {0, 0}}, {{0, 0, 0}, {0, 0, 0}}); }),
              HasSubstr("sample 1 has 2 true and 3 predicted codes, expected 3"));
  EXPECT_THAT(error_of([] { score_attributes({{0, 0, 4}}, {{0, 0, 0}}); }),
              HasSubstr("true code 4"));
}

// ---------------------------------------------------------------------------------------------
// The classifier on a tiny synthetic dataset

using testing::load_train;

AttributeAttackOptions tiny_options(int epochs, std::uint64_t seed) {
  AttributeAttackOptions o;
  o.arch = "resnet_tiny";
  o.height = 64;
  o.width = 32;
  o.epochs = epochs;
  o.batch = 16;
  o.seed = seed;
  o.threads = 1;
  return o;
}

std::vector<fs::path> train_files(const data::Dataset& d) {
  std::vector<fs::path> files;
  for (const data::ImageRecord& r : d.train)
    if (r.pid > 0) files.push_back(d.absolute(r));
  return files;
}

constexpr int kEpochs = 12;

class AttributeAttackTraining : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    // 24 identities: 12 train identities x 6 images at 64x32.
    data::synth::generate(testing::small_synth(24, 3, 6, 64, 32, 5, /*threads=*/1),
                          *dir_ / "raw");
    raw_ = new data::Dataset(load_train(*dir_ / "raw"));
    renaming_ = new std::map<int, std::vector<int>>(
        testing::write_renamed_copy(*raw_, *dir_ / "renamed", 1000));
    classifier_ = new AttributeClassifier(
        train_attribute_classifier(*raw_, raw_->attributes, tiny_options(kEpochs, 3)));
  }
  static void TearDownTestSuite() {
    delete classifier_;
    delete renaming_;
    delete raw_;
    delete dir_;
  }

  static testing::TempDir* dir_;
  static data::Dataset* raw_;
  static std::map<int, std::vector<int>>* renaming_;
  static AttributeClassifier* classifier_;
};
testing::TempDir* AttributeAttackTraining::dir_ = nullptr;
data::Dataset* AttributeAttackTraining::raw_ = nullptr;
std::map<int, std::vector<int>>* AttributeAttackTraining::renaming_ = nullptr;
AttributeClassifier* AttributeAttackTraining::classifier_ = nullptr;

TEST_F(AttributeAttackTraining, LearnsTheAttributesOfRawImages) {
  // Every attacked attribute takes both (some) values among the train identities, so the
  // majority guess is not already perfect.
  for (const AttackedAttribute& a : attacked_attributes()) {
    std::set<int> values;
    for (const data::ImageRecord& r : raw_->train) values.insert(a.code(raw_->attributes.at(r.pid)));
    EXPECT_GE(values.size(), 2u) << a.name;
  }
  const AttributeScores s = evaluate_attribute_attack(*classifier_, *raw_, raw_->attributes);
  std::printf("[ measured ] raw mean F1 %.4f vs majority %.4f (gender %.3f hair %.3f age %.3f), "
              "final loss %.4f\n",
              s.mean_f1, s.mean_majority_f1, s.attributes[0].f1, s.attributes[1].f1,
              s.attributes[2].f1, classifier_->final_loss());
  EXPECT_EQ(s.attributes.front().samples, static_cast<int>(raw_->train.size()));
  EXPECT_GT(s.mean_f1, s.mean_majority_f1 + 0.2);
  EXPECT_TRUE(std::isfinite(classifier_->final_loss()));
  EXPECT_EQ(classifier_->options().epochs, kEpochs);
}

TEST_F(AttributeAttackTraining, SameSeedSameClassifier) {
  const std::vector<fs::path> files = train_files(*raw_);
  AttributeClassifier a = train_attribute_classifier(*raw_, raw_->attributes, tiny_options(2, 11));
  AttributeClassifier b = train_attribute_classifier(*raw_, raw_->attributes, tiny_options(2, 11));
  AttributeClassifier c = train_attribute_classifier(*raw_, raw_->attributes, tiny_options(2, 12));
  EXPECT_EQ(a.final_loss(), b.final_loss());
  EXPECT_EQ(a.predict_files(files), b.predict_files(files));
  EXPECT_NE(a.final_loss(), c.final_loss());
  // Untrained classifiers of one seed start from the same weights too.
  AttributeClassifier u1(tiny_options(1, 5)), u2(tiny_options(1, 5));
  torch::Tensor x = torch::randn({4, 3, 64, 32});
  EXPECT_EQ(u1.predict(x), u2.predict(x));
  // predict_files reads images exactly as training does.
  EXPECT_EQ(a.predict_files(files).size(), files.size());
  EXPECT_EQ(a.predict_files(files).front().size(), 3u);
}

TEST_F(AttributeAttackTraining, TruthIsTheOriginalIdentity) {
  const AttributeScores direct = evaluate_attribute_attack(*classifier_, *raw_, raw_->attributes);
  // A relabelled copy scored through its new -> {original, partner} table is the raw copy again.
  const data::Dataset renamed = load_train(*dir_ / "renamed");
  const AttributeScores mapped = evaluate_attribute_attack(
      *classifier_, renamed, raw_->attributes, hit_pids_from_table(*renaming_, "renaming"));
  EXPECT_EQ(mapped.to_json(), direct.to_json());

  // Each label standing for the next identity: the truth follows hit_pids(pid)[0], not the name.
  std::vector<int> pids;
  for (const auto& [pid, attrs] : raw_->attributes)
    if (std::any_of(raw_->train.begin(), raw_->train.end(),
                    [pid = pid](const data::ImageRecord& r) { return r.pid == pid; }))
      pids.push_back(pid);
  std::map<int, std::vector<int>> next;
  for (std::size_t i = 0; i < pids.size(); ++i)
    next[pids[i]] = {pids[(i + 1) % pids.size()], pids[i]};
  std::vector<std::vector<int>> truth;
  for (const data::ImageRecord& r : raw_->train) {
    Codes codes;
    for (const AttackedAttribute& a : attacked_attributes())
      codes.push_back(a.code(raw_->attributes.at(next.at(r.pid).front())));
    truth.push_back(codes);
  }
  const AttributeScores expected =
      score_attributes(truth, classifier_->predict_files(train_files(*raw_)));
  const AttributeScores shifted = evaluate_attribute_attack(*classifier_, *raw_, raw_->attributes,
                                                            hit_pids_from_table(next, "next"));
  EXPECT_EQ(shifted.to_json(), expected.to_json());
  EXPECT_NE(shifted.mean_f1, direct.mean_f1);
}

TEST_F(AttributeAttackTraining, TruthListsEveryLabelledImageWithItsOriginalCodes) {
  const data::Dataset renamed = load_train(*dir_ / "renamed");
  const AttributeTruth t =
      attribute_attack_truth(renamed, raw_->attributes, hit_pids_from_table(*renaming_, "r"));
  ASSERT_EQ(t.files.size(), renamed.train.size());
  ASSERT_EQ(t.codes.size(), renamed.train.size());
  EXPECT_EQ(t.labels, static_cast<int>(renaming_->size()));
  for (std::size_t i = 0; i < renamed.train.size(); ++i) {
    EXPECT_EQ(t.files[i], renamed.absolute(renamed.train[i]));
    const data::Attributes& a = raw_->attributes.at(renamed.train[i].pid - 100);
    EXPECT_EQ(t.codes[i], (Codes{a.gender, a.hair_length, a.age_group})) << t.files[i];
  }
}

TEST_F(AttributeAttackTraining, EvaluationErrorsNameThePid) {
  const data::Dataset renamed = load_train(*dir_ / "renamed");
  // The new labels read as identities: nobody in the truth.
  const std::string label = std::to_string(renaming_->begin()->first);
  EXPECT_THAT(error_of([&] { evaluate_attribute_attack(*classifier_, renamed, raw_->attributes); }),
              AllOf(HasSubstr("no entry for identity " + label + ", the original of "
                              "de-identified pid " + label),
                    HasSubstr("attributes.csv")));
  data::AttributeTable partial = raw_->attributes;
  const int victim = raw_->train.back().pid;
  partial.erase(victim);
  EXPECT_THAT(error_of([&] { evaluate_attribute_attack(*classifier_, *raw_, partial); }),
              HasSubstr("no entry for identity " + std::to_string(victim) +
                        ", the original of de-identified pid " + std::to_string(victim)));
  const int first = raw_->train.front().pid;
  EXPECT_THAT(error_of([&] {
                evaluate_attribute_attack(*classifier_, *raw_, raw_->attributes,
                                          [](int) { return std::vector<int>{}; });
              }),
              HasSubstr("gives no pid for de-identified pid " + std::to_string(first)));
  EXPECT_THAT(error_of([&] {
                evaluate_attribute_attack(*classifier_, *raw_, raw_->attributes,
                                          hit_pids_from_table({{999, {1}}}, "the key"));
              }),
              HasSubstr("de-identified pid " + std::to_string(first) + " is not in the key"));
  data::Dataset empty;
  empty.root = *dir_ / "empty";
  EXPECT_THAT(error_of([&] { evaluate_attribute_attack(*classifier_, empty, raw_->attributes); }),
              HasSubstr("has no train image with pid > 0 to attack"));
}

TEST_F(AttributeAttackTraining, TrainingErrors) {
  data::AttributeTable partial = raw_->attributes;
  const int victim = raw_->train.back().pid;
  partial.erase(victim);
  EXPECT_THAT(error_of([&] { train_attribute_classifier(*raw_, partial, tiny_options(1, 0)); }),
              AllOf(HasSubstr("identity " + std::to_string(victim)),
                    HasSubstr("provide an attributes.csv")));
  EXPECT_THAT(error_of([&] { train_attribute_classifier(*raw_, {}, tiny_options(1, 0)); }),
              HasSubstr("no attribute table at all"));
  data::AttributeTable bad = raw_->attributes;
  bad[victim].age_group = 7;
  EXPECT_THAT(error_of([&] { train_attribute_classifier(*raw_, bad, tiny_options(1, 0)); }),
              HasSubstr("age_group code 7"));
  data::Dataset empty;
  empty.root = *dir_ / "empty";
  EXPECT_THAT(error_of([&] { train_attribute_classifier(empty, raw_->attributes, tiny_options(1, 0)); }),
              HasSubstr("no train image with pid > 0"));

  AttributeAttackOptions o = tiny_options(1, 0);
  o.arch = "vgg";
  EXPECT_THAT(error_of([&] { AttributeClassifier c(o); }), HasSubstr("unknown backbone arch 'vgg'"));
  o = tiny_options(0, 0);
  EXPECT_THAT(error_of([&] { AttributeClassifier c(o); }), HasSubstr("epochs must be at least 1"));
  o = tiny_options(1, 0);
  o.lr = 0;
  EXPECT_THAT(error_of([&] { AttributeClassifier c(o); }), HasSubstr("learning rate"));
  o = tiny_options(1, 0);
  o.height = 0;
  EXPECT_THAT(error_of([&] { AttributeClassifier c(o); }), HasSubstr("image size must be positive"));
  o = tiny_options(1, 0);
  o.batch = 0;
  EXPECT_THAT(error_of([&] { AttributeClassifier c(o); }), HasSubstr("batch must be at least 1"));

  AttributeClassifier c(tiny_options(1, 0));
  EXPECT_THAT(error_of([&] { c.predict(torch::zeros({2, 3, 32, 32})); }),
              HasSubstr("expected a batch [N,3,64,32]"));
  EXPECT_THAT(error_of([&] { c.predict(torch::Tensor()); }), HasSubstr("undefined tensor"));
  EXPECT_THAT(error_of([&] { c.predict_files({*dir_ / "no-such.jpg"}); }),
              HasSubstr("no-such.jpg"));
  AttributeClassifier moved = std::move(c);
  EXPECT_THAT(error_of([&] { c.final_loss(); }), HasSubstr("moved from"));
  EXPECT_EQ(moved.options().epochs, 1);
}

// ---------------------------------------------------------------------------------------------
// The command

TEST_F(AttributeAttackTraining, CommandPrintsJsonAndRejectsBadInput) {
  const std::string raw = (*dir_ / "raw").string();
  const std::string flags = " --epochs 1 --threads 1 --seed 2";
  RunResult r = run_ppreid("--log-level off privacy attribute-attack --raw " + raw + " --deid " +
                           raw + flags + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("samples"), static_cast<int>(raw_->train.size()));
  for (const char* name : {"gender", "hair_length", "age_group"}) {
    const double f1 = j.at("attributes").at(name).at("f1").get<double>();
    EXPECT_GE(f1, 0.0) << name;
    EXPECT_LE(f1, 1.0) << name;
  }
  EXPECT_GE(j.at("mean_majority_f1").get<double>(), 0.0);
  EXPECT_EQ(j.at("arch"), "resnet_tiny");

  RunResult text = run_ppreid("--log-level off privacy attribute-attack --raw " + raw +
                              " --deid " + raw + " --attacker-data " + raw + flags);
  ASSERT_EQ(text.exit_code, 0) << text.out;
  EXPECT_THAT(text.out, HasSubstr("attribute attack (macro F1"));
  EXPECT_THAT(text.out, HasSubstr("age_group"));
  EXPECT_THAT(text.out, HasSubstr(std::to_string(raw_->train.size()) + " de-identified images"));

  // The renamed copy without its mapping: its labels are nobody in the truth. That fails before
  // any training (whose end the info log would report).
  RunResult unmapped = run_ppreid("--log-level info privacy attribute-attack --raw " + raw +
                                  " --deid " + (*dir_ / "renamed").string() + flags);
  EXPECT_EQ(unmapped.exit_code, 1) << unmapped.out;
  EXPECT_THAT(unmapped.out, Not(HasSubstr("attribute classifier (")));
  EXPECT_THAT(unmapped.out, HasSubstr("error: the attribute truth has no entry for identity " +
                                      std::to_string(renaming_->begin()->first)));

  // A dataset without attributes.csv.
  const fs::path bare = *dir_ / "bare";
  fs::create_directories(bare);
  fs::copy(*dir_ / "raw" / "bounding_box_train", bare / "bounding_box_train",
           fs::copy_options::recursive | fs::copy_options::skip_existing);
  RunResult no_csv = run_ppreid("privacy attribute-attack --raw " + bare.string() + " --deid " +
                                raw + flags);
  EXPECT_EQ(no_csv.exit_code, 1) << no_csv.out;
  EXPECT_THAT(no_csv.out, HasSubstr("--raw dataset '" + bare.string() + "' has no attributes.csv"));
  RunResult attacker_no_csv = run_ppreid("privacy attribute-attack --raw " + raw + " --deid " +
                                         raw + " --attacker-data " + bare.string() + flags);
  EXPECT_EQ(attacker_no_csv.exit_code, 1) << attacker_no_csv.out;
  EXPECT_THAT(attacker_no_csv.out, HasSubstr("--attacker-data dataset"));

  const std::string base = "privacy attribute-attack --raw " + raw + " --deid " + raw;
  for (const auto& [args, mention] : std::vector<std::pair<std::string, std::string>>{
           {base + " --epochs 0", "--epochs"},
           {base + " --arch vgg", "--arch"},
           {base + " --one-time-key k.bin", "go together"}}) {
    RunResult bad = run_ppreid(args);
    EXPECT_EQ(bad.exit_code, 2) << args << "\n" << bad.out;
    EXPECT_THAT(bad.out, HasSubstr(mention)) << args;
  }
}

}  // namespace
}  // namespace ppreid::privacy
