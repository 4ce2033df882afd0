#pragma once

#include <torch/torch.h>

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/data/dataset.h"
#include "core/data/loader.h"
#include "core/data/transforms.h"
#include "core/reid/distance.h"
#include "core/reid/model.h"

namespace ppreid::privacy {

// The pedestrian identity attack of the PIS paper (Dou et al. 2026, sec. 3.1 and 4.1): the
// privacy budget T_p of a de-identification method. An attacker's ReID model, trained on raw
// images of OTHER identities, queries the de-identified data with raw images of the target
// identities; T_p is the retrieval mAP / Rank-1 of that (lower = more private).

// What a de-identified gallery image really is, known to the evaluator but not the attacker.
struct GalleryTruth {
  int original_pid = -1;      // identity of the raw image it was made from
  int camid = 0;              // 0-based camera
  std::vector<int> hit_pids;  // identities whose query counts it as a hit: the original pid and,
                              // for identity-mixing methods (PIS), the partner pids mixed in
};

// Attack retrieval quality; rates are fractions in [0, 1].
struct IdentityAttackResult {
  double map = 0, rank1 = 0, rank5 = 0;
  int valid_queries = 0;  // queries with at least one hit left in the gallery (the others skipped)
  int total_queries = 0;
  int target_ids = 0;       // distinct query pids
  int gallery_images = 0;   // de-identified images searched
  std::vector<double> cmc;  // cmc[r]: hit within rank r + 1, r < min(max_rank, gallery_images)

  // {"mAP","rank1","rank5","cmc"} as fractions, {"valid_queries","total_queries","target_ids",
  // "gallery_images"} as integers.
  nlohmann::json to_json() const;
};

// Ranks the gallery for every query like the Market protocol (ascending distance, ties by gallery
// index, stable; AP, CMC and rank-5 as reid::evaluate_market computes them) except that:
//  - a gallery image is a match when the query's pid is in its hit_pids;
//  - gallery images whose ORIGINAL pid and camid both equal the query's are removed (the
//    de-identified copy of the query image itself and its same-camera shots, as Market removes
//    same-pid-same-camera items); partner hits from the query's camera are kept;
//  - a query with no match left is skipped.
// With hit_pids = {original_pid} for every image this is exactly reid::evaluate_market on the
// original pids. `max_rank` only bounds the CMC. Throws ppreid::Error on mismatched sizes, NaN
// distances, max_rank < 1, and when no query has a hit.
IdentityAttackResult evaluate_identity_attack(const torch::Tensor& distmat,
                                              const std::vector<int>& q_pids,
                                              const std::vector<int>& q_camids,
                                              const std::vector<GalleryTruth>& gallery,
                                              int max_rank = 50);

// Who a de-identified image's pid (the pid in its file name) stands for: element 0 is the
// ORIGINAL pid of the images carrying that label, the rest are its PARTNER pids (identities mixed
// in). Every element counts as a hit. Must not return an empty list; throw ppreid::Error for an
// unknown pid.
using HitPidsFn = std::function<std::vector<int>(int deid_pid)>;

// {deid_pid}: for methods that keep the file names (image DP, blur, pixelization, ...).
std::vector<int> same_pid(int deid_pid);

// A HitPidsFn from a table deid pid -> {original pid, partner pids...} (e.g. PIS's decrypted
// one-time key). Checks the table up front (no empty entry); a pid missing from the table throws
// ppreid::Error naming it and `source` (e.g. the key file), since the de-identified data and the
// table then do not belong together.
HitPidsFn hit_pids_from_table(std::map<int, std::vector<int>> table, std::string source);

// The attacker's queries: for every target identity (pid > 0 in the raw TRAIN split) one raw
// train image per camera it appears in, the first in dataset order; in dataset order.
std::vector<data::ImageRecord> select_attack_queries(const data::Dataset& raw);

// The truth of every de-identified TRAIN image, in dataset order. Throws ppreid::Error naming the
// image when `hit_pids` returns an empty list for its pid.
std::vector<GalleryTruth> attack_gallery_truth(const data::Dataset& deid,
                                               const HitPidsFn& hit_pids);

struct IdentityAttackOptions {
  int max_rank = 50;
  reid::Metric metric = reid::Metric::kEuclidean;
  data::EvalLoaderOptions loader;
};

// The whole attack: queries = select_attack_queries(raw), gallery = every de-identified TRAIN
// image with attack_gallery_truth(deid, hit_pids); test-time features of both with `attacker`
// and `transform` (reid::test_transform of its checkpoint), pairwise distances, and
// evaluate_identity_attack. Throws ppreid::Error when the raw train split has no target identity,
// when no de-identified train image counts as a hit for any target identity (nothing to attack:
// wrong --deid, or a renaming method without its mapping), and for what the steps throw.
IdentityAttackResult run_identity_attack(reid::ReidModel& attacker,
                                         const data::TransformOptions& transform,
                                         const data::Dataset& raw, const data::Dataset& deid,
                                         const HitPidsFn& hit_pids = same_pid,
                                         const IdentityAttackOptions& options = {});

}  // namespace ppreid::privacy
