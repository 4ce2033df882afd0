#include "core/privacy/identity_attack.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>
#include <span>
#include <string>
#include <utility>

#include "core/reid/evaluation.h"
#include "core/reid/features.h"
#include "core/util/error.h"

namespace ppreid::privacy {

nlohmann::json IdentityAttackResult::to_json() const {
  return {{"mAP", map},
          {"rank1", rank1},
          {"rank5", rank5},
          {"cmc", cmc},
          {"valid_queries", valid_queries},
          {"total_queries", total_queries},
          {"target_ids", target_ids},
          {"gallery_images", gallery_images}};
}

IdentityAttackResult evaluate_identity_attack(const torch::Tensor& distmat,
                                              const std::vector<int>& q_pids,
                                              const std::vector<int>& q_camids,
                                              const std::vector<GalleryTruth>& gallery,
                                              int max_rank) {
  if (max_rank < 1) throw Error("max_rank must be at least 1, got " + std::to_string(max_rank));
  if (distmat.defined() && distmat.dim() == 2) {  // otherwise reid::rank_queries says what is wrong
    reid::check_entry_count(q_pids.size(), distmat, 0, "q_pids");
    reid::check_entry_count(q_camids.size(), distmat, 0, "q_camids");
    reid::check_entry_count(gallery.size(), distmat, 1, "gallery truth");
  }
  // Hit sets flattened once (offsets into one array) instead of chasing a vector per pair.
  const int num_g = static_cast<int>(gallery.size());
  std::vector<int> original(num_g), camid(num_g), offset(num_g + 1, 0), hits;
  for (int g = 0; g < num_g; ++g) {
    original[g] = gallery[g].original_pid;
    camid[g] = gallery[g].camid;
    hits.insert(hits.end(), gallery[g].hit_pids.begin(), gallery[g].hit_pids.end());
    offset[g + 1] = static_cast<int>(hits.size());
  }
  auto roles = [&](int64_t q, std::span<reid::GalleryRole> role) {
    const int pid = q_pids[q], cam = q_camids[q];
    for (int g = 0; g < num_g; ++g) {
      if (original[g] == pid && camid[g] == cam)
        role[g] = reid::GalleryRole::kRemoved;
      else if (std::find(hits.begin() + offset[g], hits.begin() + offset[g + 1], pid) !=
               hits.begin() + offset[g + 1])
        role[g] = reid::GalleryRole::kMatch;
    }
  };
  const std::vector<reid::QueryOutcome> outcomes = reid::rank_queries(distmat, roles);
  if (std::none_of(outcomes.begin(), outcomes.end(), [](const auto& o) { return o.valid; }))
    throw Error("no attack query has a hit in the de-identified gallery (" +
                std::to_string(outcomes.size()) +
                " queries) once the images with the query's original pid and camera are "
                "removed; every target identity needs a de-identified image from another camera "
                "(or a partner image) - check that the gallery was made from the queries' "
                "identities");
  const reid::RetrievalMetrics m = reid::summarize_outcomes(outcomes, std::min(max_rank, num_g));
  IdentityAttackResult r;
  r.map = m.map;
  r.rank1 = m.rank1;
  r.rank5 = m.rank5;
  r.cmc = m.cmc;
  r.valid_queries = m.valid_queries;
  r.total_queries = m.total_queries;
  r.target_ids = static_cast<int>(std::set<int>(q_pids.begin(), q_pids.end()).size());
  r.gallery_images = num_g;
  return r;
}

std::vector<int> same_pid(int deid_pid) { return {deid_pid}; }

HitPidsFn hit_pids_from_table(std::map<int, std::vector<int>> table, std::string source) {
  for (const auto& [pid, hits] : table)
    if (hits.empty())
      throw Error(source + ": de-identified pid " + std::to_string(pid) +
                  " maps to no identity; each entry needs its original pid (and its partners)");
  return [table = std::move(table), source = std::move(source)](int deid_pid) {
    auto it = table.find(deid_pid);
    if (it == table.end())
      throw Error("de-identified pid " + std::to_string(deid_pid) + " is not in " + source +
                  "; the mapping does not belong to this de-identified dataset");
    return it->second;
  };
}

std::vector<data::ImageRecord> select_attack_queries(const data::Dataset& raw) {
  std::set<std::pair<int, int>> seen;  // (pid, camid) already queried
  std::vector<data::ImageRecord> queries;
  for (const data::ImageRecord& r : raw.train)
    if (r.pid > 0 && seen.insert({r.pid, r.camid}).second) queries.push_back(r);
  return queries;
}

std::vector<GalleryTruth> attack_gallery_truth(const data::Dataset& deid,
                                               const HitPidsFn& hit_pids) {
  std::vector<GalleryTruth> truth;
  truth.reserve(deid.train.size());
  for (const data::ImageRecord& r : deid.train) {
    std::vector<int> hits = hit_pids(r.pid);
    if (hits.empty())
      throw Error("the identity mapping gives no pid for de-identified pid " +
                  std::to_string(r.pid) + " ('" + deid.absolute(r).string() +
                  "'); it must give the original pid first, then any partner pids");
    const int original = hits.front();
    truth.push_back({original, r.camid, std::move(hits)});
  }
  return truth;
}

IdentityAttackResult run_identity_attack(reid::ReidModel& attacker,
                                         const data::TransformOptions& transform,
                                         const data::Dataset& raw, const data::Dataset& deid,
                                         const HitPidsFn& hit_pids,
                                         const IdentityAttackOptions& options) {
  if (!hit_pids) throw Error("run_identity_attack: no identity mapping given (use same_pid)");
  const std::vector<data::ImageRecord> queries = select_attack_queries(raw);
  if (queries.empty())
    throw Error("raw dataset '" + raw.root.string() +
                "' has no target identity: its bounding_box_train has no image with pid > 0");
  const std::vector<GalleryTruth> truth = attack_gallery_truth(deid, hit_pids);
  std::set<int> targets;
  for (const data::ImageRecord& q : queries) targets.insert(q.pid);
  const bool any_hit = std::any_of(truth.begin(), truth.end(), [&](const GalleryTruth& t) {
    return std::any_of(t.hit_pids.begin(), t.hit_pids.end(),
                       [&](int pid) { return targets.count(pid) > 0; });
  });
  if (!any_hit)
    throw Error("nothing to attack: none of the " + std::to_string(truth.size()) +
                " de-identified train images of '" + deid.root.string() +
                "' belongs to any of the " + std::to_string(targets.size()) +
                " target identities (the train pids of '" + raw.root.string() +
                "'); the de-identified dataset must be made from the raw one, and a method that "
                "gives new labels needs its new -> original identity mapping");
  spdlog::info("identity attack: {} queries of {} identities against {} de-identified images",
               queries.size(), targets.size(), truth.size());

  const reid::FeatureSet q =
      reid::extract_features(attacker, raw.root, queries, transform, options.loader);
  const reid::FeatureSet g =
      reid::extract_features(attacker, deid, data::SplitKind::kTrain, transform, options.loader);
  const torch::Tensor distmat = reid::pairwise_distance(q.features, g.features, options.metric);
  return evaluate_identity_attack(distmat, q.pids, q.camids, truth, options.max_rank);
}

}  // namespace ppreid::privacy
