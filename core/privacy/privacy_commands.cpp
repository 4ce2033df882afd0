#include "core/privacy/privacy_commands.h"

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include "core/data/dataset.h"
#include "core/deid/pis/one_time_key.h"
#include "core/privacy/identity_attack.h"
#include "core/privacy/pu_score.h"
#include "core/reid/checkpoint.h"
#include "core/reid/features.h"
#include "core/util/error.h"
#include "core/util/threads.h"

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
// for every method that keeps the names. A method that gives new labels (PIS) plugs its
// new -> {original, partners} table in here with hit_pids_from_table.
HitPidsFn hit_pids_for(const AttackArgs& a) {
  if (a.one_time_key.empty() != a.key_file.empty())
    throw UsageError("--one-time-key and --key-file go together");
  if (a.one_time_key.empty()) return same_pid;
  const deid::pis::ShiftPlan plan = deid::pis::read_one_time_key(a.one_time_key, a.key_file);
  std::map<int, std::vector<int>> table;
  for (const auto& [pid, shift] : plan.by_pid) {
    std::vector<int> hits = {shift.original_pid};
    // Cross-dataset partners are people of another dataset: their pids name nobody here.
    if (!plan.cross_dataset)
      for (const auto& p : shift.partners) hits.push_back(p.pid);
    table[shift.new_pid] = hits;
  }
  // Distractors keep label 0 and stand for nobody in particular.
  table[0] = {0};
  return hit_pids_from_table(std::move(table), a.one_time_key);
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
  const HitPidsFn hit_pids = hit_pids_for(a);
  util::configure_torch_threads(a.threads);
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
