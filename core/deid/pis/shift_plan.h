#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/data/dataset.h"

namespace ppreid::deid::pis {

// Person identity shift (Dou et al. 2026): every image of identity A is decoded from the mix
// lambda_1 * z(A image) + sum_i lambda_{i+1} * z(partner_i), where the partners are k-1 fixed
// images of k-1 other identities. All images of A share the same partners, so "same person /
// different person" survives while A's appearance does not. This file plans the shift; the
// network that encodes and decodes is elsewhere.

inline constexpr int kDefaultK = 2;
inline constexpr double kDefaultLambda = 0.5;
inline constexpr double kDefaultMaxWeight = 0.5;  // d: no image may weigh more than this

// {lambda1, (1-lambda1)/(k-1), ...}: the target's weight first, the partners share the rest.
// Throws UsageError for k < 2.
std::vector<double> make_lambdas(int k = kDefaultK, double lambda1 = kDefaultLambda);

// k >= 2 weights, each in (0, d], summing to 1 (within 1e-9). Throws UsageError naming the value
// and the rule: a weight above d would let that image's identity show through.
void validate_lambdas(const std::vector<double>& lambdas, double d = kDefaultMaxWeight);

struct PartnerImage {
  std::string path;  // relative to the partner dataset root
  int pid = 0;       // the partner's identity in the partner dataset
  bool operator==(const PartnerImage&) const = default;
};

struct IdentityShift {
  int original_pid = 0;
  int new_pid = 0;                     // 0 for distractors
  std::vector<PartnerImage> partners;  // k-1 images of k-1 distinct identities
  bool operator==(const IdentityShift&) const = default;
};

struct PartnerOptions {
  int k = kDefaultK;
  // "" = any identity. Otherwise an attribute of attributes.csv ("gender", "hair_length",
  // "age_group", "hat", "backpack", "bag", "sleeve_length", "lower_length", "upper_color",
  // "lower_color"): every partner identity must have a different value of it than the target.
  // Needs attributes.csv in both datasets. Not applied to distractors (they have no attributes).
  std::string opposite_attribute;
  // nullopt: OpenSSL's CSPRNG. Otherwise a DRBG keyed by the seed (experiments only: whoever
  // knows the seed and the dataset can recompute the mapping).
  std::optional<std::uint64_t> seed;
};

struct ShiftPlan {
  std::vector<double> lambdas;  // lambdas[0] = target weight, then one per partner
  bool cross_dataset = false;   // partners come from another dataset
  // Every pid > 0 of train, query and gallery; the same shift in every split.
  std::map<int, IdentityShift> by_pid;
  // pid-0 images (distractors), keyed by their path: each has its own random partners, and
  // new_pid stays 0.
  std::map<std::string, IdentityShift> distractors;

  // The shift of an image's identity (by pid, or by path for a distractor). Throws Error when the
  // plan does not cover the image.
  const IdentityShift& for_image(const data::ImageRecord& r) const;
  bool operator==(const ShiftPlan&) const = default;
};

// Picks partners and new labels for every identity of `targets`. partners == nullptr: partners
// come from `targets` itself and never have the target's pid; otherwise from `*partners`
// (cross-dataset). Rules:
//  - a partner image has usable pose keypoints (data::usable_for_pose_conditioning);
//  - partner identities are drawn uniformly among those with such an image in the train split;
//    only when fewer than k-1 of them qualify for a target are identities whose usable images
//    are all in query/gallery considered too;
//  - the partner image is drawn uniformly among the identity's usable train images (or its usable
//    images of any split when it has none in train);
//  - new labels are drawn uniformly without replacement from {1..9999} minus every pid of both
//    datasets, so no new label equals an original one and their order says nothing.
// `lambdas` must have k entries (validate them with validate_lambdas first). Deterministic for a
// seed. Throws Error (naming the dataset and what to do) when no partner is eligible or too few
// labels are free, UsageError for bad options.
ShiftPlan plan_identity_shift(const data::Dataset& targets, const data::Dataset* partners,
                              const PartnerOptions& options, const std::vector<double>& lambdas);

// The released name of an image: the pid field of the file name becomes `new_pid` (4 digits, zero
// padded); the directory and the rest of the name stay.
// "bounding_box_train/0002_c1s1_000451_03.jpg" with 517 ->
// "bounding_box_train/0517_c1s1_000451_03.jpg". Throws Error when the file name does not parse
// under `layout` or new_pid is outside 0..9999.
std::string shifted_path(const std::string& relative_path, data::Layout layout, int new_pid);

// The plan as JSON (the content of the one-time key) and back. plan_from_json is strict: a
// missing, extra or ill-typed field, inconsistent partner counts or a repeated new label throw
// Error naming the field.
nlohmann::json plan_to_json(const ShiftPlan& plan);
ShiftPlan plan_from_json(const nlohmann::json& json);

}  // namespace ppreid::deid::pis
