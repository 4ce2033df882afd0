#include "apps/ppreid/commands.h"

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include "core/data/dataset.h"
#include "core/deid/pis/one_time_key.h"
#include "core/privacy/attribute_attack.h"
#include "core/privacy/identity_attack.h"
#include "core/privacy/pu_score.h"
#include "core/privacy/shift_truth.h"
#include "core/reid/backbone.h"
#include "core/reid/checkpoint.h"
#include "core/reid/features.h"
#include "core/util/error.h"
#include "core/tensor/torch_threads.h"

namespace ppreid::privacy {
namespace fs = std::filesystem;
namespace {

struct AttackArgs {
  std::string attacker, raw, deid, metric = "euclidean";
  int max_rank = 50;
  int threads = 0;
  int batch_size = 128;
  bool json = false;
  std::string one_time_key, key_file;  // PIS: decrypts new label -> original + partners
};

// Who each de-identified image stands for (see HitPidsFn): its own file-name pid, which is right
// for every method that keeps the names. PIS gives new labels: its decrypted one-time key says
// new -> {original, partners}.
HitPidsFn hit_pids_for(const std::string& one_time_key, const std::string& key_file) {
  if (one_time_key.empty() != key_file.empty())
    throw UsageError("--one-time-key and --key-file go together");
  if (one_time_key.empty()) return same_pid;
  return hit_pids_from_shift_plan(deid::pis::read_one_time_key(one_time_key, key_file),
                                  one_time_key);
}

void run_identity_attack_command(const AttackArgs& a) {
  std::error_code ec;
  if (!fs::is_directory(a.attacker, ec))
    throw Error("attacker checkpoint directory '" + a.attacker + "' " +
                (fs::exists(a.attacker, ec) ? "is not a directory" : "does not exist") +
                "; give --attacker a checkpoint written by `ppreid train` on raw images of "
                "identities other than the targets");
  data::LoadOptions train_only;
  train_only.require_query_gallery = false;
  const data::Dataset raw = data::load_dataset(a.raw, train_only);
  const data::Dataset deid = data::load_dataset(a.deid, train_only);
  const HitPidsFn hit_pids = hit_pids_for(a.one_time_key, a.key_file);
  tensor::configure_torch_threads(a.threads);
  reid::CheckpointInfo info;
  reid::ReidModel attacker = reid::load_checkpoint_model(a.attacker, &info);

  IdentityAttackOptions options;
  options.max_rank = a.max_rank;
  options.metric = reid::parse_metric(a.metric);
  options.loader.batch_size = a.batch_size;
  const IdentityAttackResult r =
      run_identity_attack(attacker, reid::test_transform(info), raw, deid, hit_pids, options);
  if (a.json) {
    nlohmann::json j = r.to_json();
    j["metric"] = a.metric;
    j["max_rank"] = a.max_rank;
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::printf("identity attack T_p (lower = more private): mAP %.4f  rank-1 %.4f  rank-5 %.4f\n",
              r.map, r.rank1, r.rank5);
  std::printf("  %d of %d queries with a hit (%d target identities), %d de-identified images\n",
              r.valid_queries, r.total_queries, r.target_ids, r.gallery_images);
}

struct AttributeArgs {
  std::string raw, deid, attacker_data;
  std::string one_time_key, key_file;
  AttributeAttackOptions options;
  bool json = false;
};

// Loads a raw dataset's train split and checks that it carries the identities' attributes.
data::Dataset load_attributed(const std::string& root, const char* flag) {
  data::LoadOptions train_only;
  train_only.require_query_gallery = false;
  data::Dataset d = data::load_dataset(root, train_only);
  if (d.attributes.empty()) {
    std::error_code ec;
    const fs::path csv = d.root / "attributes.csv";
    throw Error(std::string(flag) + " dataset '" + root + "' " +
                (fs::exists(csv, ec) ? "has an attributes.csv without any identity row"
                                     : "has no attributes.csv") +
                "; the attribute attack needs every identity's gender, hair_length and age_group "
                "there (a header `pid,gender,hair_length,age_group,...` as in the README's table "
                "of dataset files; `ppreid synth` writes one)");
  }
  return d;
}

void run_attribute_attack_command(const AttributeArgs& a) {
  const data::Dataset raw = load_attributed(a.raw, "--raw");
  data::LoadOptions train_only;
  train_only.require_query_gallery = false;
  const data::Dataset deid = data::load_dataset(a.deid, train_only);
  const HitPidsFn hit_pids = hit_pids_for(a.one_time_key, a.key_file);
  // Whatever does not fit together fails now, not after training.
  attribute_attack_truth(deid, raw.attributes, hit_pids);
  tensor::configure_torch_threads(a.options.threads);
  // The attacker trains on raw images of its own people when it has them, else on the targets'.
  const data::Dataset attacker =
      a.attacker_data.empty() ? raw : load_attributed(a.attacker_data, "--attacker-data");
  AttributeClassifier classifier =
      train_attribute_classifier(attacker, attacker.attributes, a.options);
  const AttributeScores s = evaluate_attribute_attack(classifier, deid, raw.attributes, hit_pids);
  if (a.json) {
    nlohmann::json j = s.to_json();
    j["arch"] = a.options.arch;
    j["epochs"] = a.options.epochs;
    j["final_loss"] = classifier.final_loss();
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::printf("attribute attack (macro F1; majority-class guess in brackets): mean %.4f (%.4f)\n",
              s.mean_f1, s.mean_majority_f1);
  for (const AttributeScore& x : s.attributes)
    std::printf("  %-12s F1 %.4f (%.4f)  accuracy %.4f\n", x.name.c_str(), x.f1, x.majority_f1,
                x.accuracy);
  std::printf("  %d de-identified images\n",
              s.attributes.empty() ? 0 : s.attributes.front().samples);
}

struct PuArgs {
  double utility = 0, privacy = 0, iu = 1, ip = 1;
  int sweep = 0;
  bool json = false;
};

void run_pu_score_command(PuArgs a, const CLI::App& cmd) {
  const bool iu_given = cmd.get_option("--iu")->count() > 0;
  const bool ip_given = cmd.get_option("--ip")->count() > 0;
  if (a.sweep > 0 && (iu_given || ip_given))
    throw UsageError("--sweep varies --iu and --ip itself; give either --sweep or --iu/--ip");
  auto check_weight = [](bool given, double value, const char* flag) {
    if (!given || (value >= 0 && value <= 2)) return;
    std::ostringstream got;
    got << value;
    throw UsageError(std::string(flag) + " must be in [0, 2] (--iu + --ip = 2), got " + got.str());
  };
  check_weight(iu_given, a.iu, "--iu");
  check_weight(ip_given, a.ip, "--ip");
  // One weight fixes the other (I_u + I_p = 2).
  if (iu_given && !ip_given) a.ip = 2 - a.iu;
  if (ip_given && !iu_given) a.iu = 2 - a.ip;
  try {
    check_pu_inputs(a.utility, a.privacy, a.iu, a.ip, {"--utility", "--privacy", "--iu", "--ip"});
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  if (a.sweep > 0) {
    const std::vector<PuPoint> points = pu_sweep(a.utility, a.privacy, a.sweep);
    if (a.json) {
      nlohmann::json j = {
          {"S_u", a.utility}, {"S_p", a.privacy}, {"sweep", nlohmann::json::array()}};
      for (const PuPoint& p : points) j["sweep"].push_back(p.to_json());
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::printf("PU-score for S_u %g, S_p %g\n    I_p    I_u  PU-score\n", a.utility, a.privacy);
    for (const PuPoint& p : points) std::printf("  %5.3f  %5.3f  %.4f\n", p.i_p, p.i_u, p.score);
    return;
  }
  const double score = pu_score(a.utility, a.privacy, a.iu, a.ip);
  if (a.json) {
    std::cout << nlohmann::json{{"pu_score", score},
                                {"S_u", a.utility},
                                {"S_p", a.privacy},
                                {"I_u", a.iu},
                                {"I_p", a.ip}}
                     .dump(2)
              << "\n";
    return;
  }
  std::printf("PU-score %.4f  (S_u %g, S_p %g, I_u %g, I_p %g)\n", score, a.utility, a.privacy,
              a.iu, a.ip);
}

}  // namespace

void register_privacy_commands(CLI::App& app) {
  CLI::App* privacy = app.add_subcommand("privacy", "Privacy attacks and trade-off scores");
  privacy->require_subcommand(1);

  auto a = std::make_shared<AttackArgs>();
  CLI::App* attack = privacy->add_subcommand(
      "identity-attack",
      "T_p: raw images of the target identities query the de-identified train split");
  attack
      ->add_option("--attacker", a->attacker,
                   "Checkpoint of the attacker's ReID model (trained on other identities)")
      ->required();
  attack->add_option("--raw", a->raw, "Raw dataset: its train identities are the targets")
      ->required();
  attack->add_option("--deid", a->deid, "De-identified copy of --raw (its train split is searched)")
      ->required();
  attack->add_option("--max-rank", a->max_rank, "Length of the CMC curve in --json")
      ->check(CLI::Range(1, 1000000));
  attack->add_option("--metric", a->metric, "euclidean or cosine")
      ->check(CLI::IsMember({"euclidean", "cosine"}));
  attack->add_option("--threads", a->threads, "LibTorch threads (0 = all cores)")
      ->check(CLI::Range(0, 1024));
  attack->add_option("--batch-size", a->batch_size, "Feature extraction batch size")
      ->check(CLI::Range(1, 4096));
  attack->add_option("--one-time-key", a->one_time_key,
                     "PIS: the release's encrypted one-time key; a hit is the original identity "
                     "or a partner mixed in");
  attack->add_option("--key-file", a->key_file, "PIS: the key file of --one-time-key");
  attack->add_flag("--json", a->json, "Print JSON");
  attack->callback([a] { run_identity_attack_command(*a); });

  auto t = std::make_shared<AttributeArgs>();
  CLI::App* attr = privacy->add_subcommand(
      "attribute-attack",
      "Attribute F1: a classifier trained on raw images predicts gender, hair length and age "
      "group of the de-identified train split");
  attr->add_option("--raw", t->raw,
                   "Raw dataset with attributes.csv: the truth (and, without --attacker-data, the "
                   "classifier's training images)")
      ->required();
  attr->add_option("--deid", t->deid, "De-identified copy of --raw (its train split is attacked)")
      ->required();
  attr->add_option("--attacker-data", t->attacker_data,
                   "Raw dataset with attributes.csv of the attacker's own people to train on");
  attr->add_option("--one-time-key", t->one_time_key,
                   "PIS: the release's encrypted one-time key; the truth is the original identity");
  attr->add_option("--key-file", t->key_file, "PIS: the key file of --one-time-key");
  attr->add_option("--arch", t->options.arch, "Classifier backbone")
      ->check(CLI::IsMember(reid::backbone_archs()));
  attr->add_option("--epochs", t->options.epochs, "Training epochs")->check(CLI::Range(1, 100000));
  attr->add_option("--height", t->options.height, "Input height")->check(CLI::Range(16, 4096));
  attr->add_option("--width", t->options.width, "Input width")->check(CLI::Range(16, 4096));
  attr->add_option("--batch-size", t->options.batch, "Training batch size")
      ->check(CLI::Range(1, 4096));
  attr->add_option("--lr", t->options.lr, "Adam learning rate")->check(CLI::PositiveNumber);
  attr->add_option("--seed", t->options.seed, "Seed of weights, shuffling and flips");
  attr->add_option("--threads", t->options.threads, "LibTorch threads (0 = all cores)")
      ->check(CLI::Range(0, 1024));
  attr->add_flag("--json", t->json, "Print JSON");
  attr->callback([t] { run_attribute_attack_command(*t); });

  auto p = std::make_shared<PuArgs>();
  CLI::App* pu = privacy->add_subcommand(
      "pu-score", "PU-score = 2 / (I_u / S_u + I_p / (1 - S_p)) of a utility and a privacy score");
  pu->add_option("--utility", p->utility,
                 "S_u: T_u (ReID mAP or Rank-1 on de-identified data) in [0, 1]")
      ->required();
  pu->add_option("--privacy", p->privacy, "S_p: T_p (identity attack mAP or Rank-1) in [0, 1]")
      ->required();
  pu->add_option("--iu", p->iu, "I_u, weight of utility (I_u + I_p = 2; default 1)");
  pu->add_option("--ip", p->ip, "I_p, weight of privacy (I_u + I_p = 2; default 1)");
  pu->add_option("--sweep", p->sweep, "Print STEPS + 1 points of I_p from 0 to 2 instead")
      ->check(CLI::Range(1, 10000));
  pu->add_flag("--json", p->json, "Print JSON");
  pu->callback([p, pu] { run_pu_score_command(*p, *pu); });
}

}  // namespace ppreid::privacy
