#include "simulations/privacy_utility.h"

#include <spdlog/spdlog.h>

#include "core/data/dataset.h"
#include "core/deid/pis/one_time_key.h"
#include "core/privacy/attribute_attack.h"
#include "core/privacy/identity_attack.h"
#include "core/privacy/pu_score.h"
#include "core/privacy/shift_truth.h"
#include "core/reid/checkpoint.h"
#include "core/reid/features.h"
#include "core/reid/train_config.h"
#include "core/reid/trainer.h"
#include "core/util/atomic_file.h"
#include "core/util/error.h"

namespace ppreid::sim {
namespace fs = std::filesystem;
namespace {

data::Dataset load_train_only(const fs::path& root) {
  data::LoadOptions o;
  o.require_query_gallery = false;
  return data::load_dataset(root, o);
}

// A Market-layout directory whose train split holds the raw held-out identities (query and
// gallery, pid > 0): the attacker's own people, never the targets. Built once, atomically.
fs::path attacker_dataset(const Population& pop, const fs::path& out) {
  const fs::path dir = out / "data" / "attacker";
  if (fs::exists(dir)) return dir;
  const fs::path tmp = out / "data" / ".attacker.partial";
  fs::remove_all(tmp);
  fs::create_directories(tmp / "bounding_box_train");
  data::LoadOptions test_only;
  test_only.require_train = false;
  const data::Dataset test = data::load_dataset(pop.test, test_only);
  for (const auto* split : {&test.query, &test.gallery})
    for (const auto& r : *split) {
      if (r.pid <= 0) continue;
      const fs::path to = tmp / "bounding_box_train" / fs::path(r.path).filename();
      if (!fs::exists(to)) fs::copy_file(test.absolute(r), to);
    }
  for (const char* name : {"attributes.csv", "keypoints.csv"})
    if (fs::exists(pop.test / name)) fs::copy_file(pop.test / name, tmp / name);
  fs::rename(tmp, dir);
  return dir;
}

// The attacker's ReID model: the privacy section's training config on the attacker's people.
fs::path train_reid_attacker(const SimConfig& c, const data::Dataset& people, const fs::path& dir) {
  if (fs::exists(dir / "summary.json")) return dir / "checkpoint";
  reid::TrainConfig tc = reid::load_train_config(c.privacy.attacker_config);
  tc.profile.runtime.threads = c.threads;
  tc.profile.runtime.seed = c.seed + 4049;
  if (c.privacy.attacker_epochs > 0) tc.schedule.epochs = c.privacy.attacker_epochs;
  reid::TrainOptions o;
  o.out = dir;
  o.resume = fs::exists(dir / "checkpoint");
  o.evaluate = false;  // its people have no query/gallery split; the attack is its evaluation
  spdlog::info("training the attacker's ReID model on {} raw images of {} other people",
               people.train.size(), people.num_train_ids);
  reid::train_model(tc, people, o);
  return dir / "checkpoint";
}

privacy::HitPidsFn hit_pids_of(const NamedMethod& method, const SimKeys& keys,
                               const fs::path& run_dir, const std::string& site) {
  if (method.spec.method != "pis") return privacy::same_pid;
  const fs::path key = method.spec.one_time_key ? *method.spec.one_time_key
                                                : run_dir / "secrets" / (site + ".otk");
  const fs::path key_file = method.spec.key_file ? *method.spec.key_file : keys.dir / "pis.aeskey";
  return privacy::hit_pids_from_shift_plan(deid::pis::read_one_time_key(key, key_file),
                                           key.string());
}

nlohmann::json sweep_json(double s_u, double s_p) {
  nlohmann::json points = nlohmann::json::array();
  for (const auto& p : privacy::pu_sweep(s_u, s_p, 8)) points.push_back(p.to_json());
  return points;
}

}  // namespace

fs::path site_store(const fs::path& run_dir, const std::string& site) {
  return run_dir / "sites" / site / "store";
}

nlohmann::json privacy_utility_rows(const SimConfig& c, const Population& pop, const SimKeys& keys,
                                    const std::vector<FederationResult>& runs,
                                    const std::vector<NamedMethod>& methods,
                                    const std::vector<fs::path>& run_dirs, const fs::path& out) {
  const data::Dataset people = load_train_only(attacker_dataset(pop, out));
  const fs::path attacker_ckpt = train_reid_attacker(c, people, out / "attackers" / "reid");
  reid::CheckpointInfo info;
  reid::ReidModel attacker = reid::load_checkpoint_model(attacker_ckpt, &info);
  const data::TransformOptions transform = reid::test_transform(info);

  std::optional<privacy::AttributeClassifier> classifier;
  const data::AttributeTable truth = data::read_attributes_csv(pop.raw / "attributes.csv");
  std::vector<data::Dataset> raw_sites;
  for (const auto& s : pop.sites) raw_sites.push_back(load_train_only(s.raw));

  nlohmann::json rows = nlohmann::json::array();
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const fs::path cache = run_dirs[i] / "privacy.json";
    if (fs::exists(cache)) {
      rows.push_back(nlohmann::json::parse(util::read_file(cache)));
      continue;
    }
    if (!classifier) {
      privacy::AttributeAttackOptions ao;
      ao.height = c.profile.transform.height;
      ao.width = c.profile.transform.width;
      ao.epochs = c.privacy.attribute_epochs;
      ao.seed = c.seed + 6007;
      ao.threads = c.threads;
      spdlog::info("training the attribute classifier on the attacker's raw images");
      classifier.emplace(privacy::train_attribute_classifier(people, people.attributes, ao));
    }
    double map = 0, rank1 = 0, f1 = 0;
    int valid = 0, total = 0, samples = 0;
    for (std::size_t s = 0; s < pop.sites.size(); ++s) {
      const std::string& site = pop.sites[s].site_id;
      const data::Dataset deid = load_train_only(site_store(run_dirs[i], site));
      const privacy::HitPidsFn hits = hit_pids_of(methods[i], keys, run_dirs[i], site);
      const privacy::IdentityAttackResult r =
          privacy::run_identity_attack(attacker, transform, raw_sites[s], deid, hits);
      map += r.map * r.valid_queries;
      rank1 += r.rank1 * r.valid_queries;
      valid += r.valid_queries;
      total += r.total_queries;
      const privacy::AttributeScores a =
          privacy::evaluate_attribute_attack(*classifier, deid, truth, hits);
      const int n = a.attributes.empty() ? 0 : a.attributes.front().samples;
      f1 += a.mean_f1 * n;
      samples += n;
    }
    if (valid == 0 || samples == 0)
      throw Error("privacy-utility run '" + runs[i].name + "': no site released an image the "
                  "attacks could score; check the method's settings in " + c.file.string());
    const auto& f = runs[i].final_round();
    const double tp_map = map / valid, tp_rank1 = rank1 / valid;
    nlohmann::json row = {
        {"method", runs[i].name},
        {"T_u", {{"mAP", f.map}, {"rank1", f.rank1}, {"centroid_mAP", f.centroid_map},
                 {"centroid_rank1", f.centroid_rank1},
                 {"centroid_protocol", f.centroid_protocol}}},
        {"T_p", {{"mAP", tp_map}, {"rank1", tp_rank1}, {"valid_queries", valid},
                 {"total_queries", total}}},
        {"attribute_attack", {{"mean_f1", f1 / samples}, {"samples", samples}}},
        {"pu_score", {{"mAP", privacy::pu_score(f.map, tp_map)},
                      {"rank1", privacy::pu_score(f.rank1, tp_rank1)}}},
        {"pu_sweep_mAP", sweep_json(f.map, tp_map)}};
    util::write_file_atomic(cache, row.dump(2) + "\n");
    spdlog::info("'{}': T_u mAP {:.3f}, T_p mAP {:.3f}, attribute F1 {:.3f}", runs[i].name, f.map,
                 tp_map, f1 / samples);
    rows.push_back(row);
  }
  return rows;
}

}  // namespace ppreid::sim
