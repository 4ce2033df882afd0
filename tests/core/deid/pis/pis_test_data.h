#pragma once

// In-memory datasets for the PIS planning tests: no files, exact control over which images have a
// usable pose and which attributes each identity has.
#include <string>
#include <vector>

#include "core/data/dataset.h"

namespace ppreid::deid::pis::testdata {

struct IdentitySpec {
  int pid = 1;
  data::SplitKind split = data::SplitKind::kTrain;
  int images = 3;
  bool usable_pose = true;  // shoulders and hips visible; otherwise only the head
};

inline data::Pose make_pose(bool usable) {
  data::Pose pose;
  pose[data::Joint::kNose] = {0.5f, 0.1f};
  if (usable) {
    pose[data::Joint::kRShoulder] = {0.35f, 0.25f};
    pose[data::Joint::kLShoulder] = {0.65f, 0.25f};
    pose[data::Joint::kRHip] = {0.4f, 0.55f};
    pose[data::Joint::kLHip] = {0.6f, 0.55f};
  }
  return pose;
}

inline std::vector<data::ImageRecord>& split_of(data::Dataset& ds, data::SplitKind kind) {
  return kind == data::SplitKind::kTrain   ? ds.train
         : kind == data::SplitKind::kQuery ? ds.query
                                           : ds.gallery;
}

// Every image gets a keypoints row; `distractors` pid-0 gallery images are added at the end.
inline data::Dataset make_dataset(const std::vector<IdentitySpec>& specs, int distractors = 0,
                                  const std::string& root = "mem-dataset") {
  data::Dataset ds;
  ds.root = root;
  int frame = 1;
  for (const auto& spec : specs) {
    for (int i = 0; i < spec.images; ++i) {
      data::ImageRecord r;
      r.pid = spec.pid;
      r.camid = i % 2;
      r.path = std::string(data::split_dir(spec.split)) + "/" +
               data::market_image_name(spec.pid, r.camid, 1, frame++, 1);
      ds.keypoints[r.path] = make_pose(spec.usable_pose);
      split_of(ds, spec.split).push_back(r);
    }
  }
  for (int i = 0; i < distractors; ++i) {
    data::ImageRecord r;
    r.pid = 0;
    r.path = std::string("bounding_box_test/") + data::market_image_name(0, 0, 1, frame++, 1);
    ds.keypoints[r.path] = make_pose(true);
    ds.gallery.push_back(r);
  }
  return ds;
}

// Identities first..last in one split, `images` usable images each.
inline std::vector<IdentitySpec> identities(int first, int last, data::SplitKind split,
                                            int images = 3) {
  std::vector<IdentitySpec> out;
  for (int pid = first; pid <= last; ++pid) out.push_back({pid, split, images, true});
  return out;
}

// Train identities 1..6 (train), test identities 7..12 in both query and gallery, 2 distractors.
inline data::Dataset market_like() {
  auto specs = identities(1, 6, data::SplitKind::kTrain);
  for (auto& s : identities(7, 12, data::SplitKind::kQuery, 1)) specs.push_back(s);
  for (auto& s : identities(7, 12, data::SplitKind::kGallery, 2)) specs.push_back(s);
  return make_dataset(specs, 2);
}

}  // namespace ppreid::deid::pis::testdata
