#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/data/attributes.h"
#include "core/data/image_name.h"
#include "core/data/keypoints.h"

namespace ppreid::data {

struct ImageRecord {
  std::string path;  // relative to the dataset root, e.g. "query/0002_c1s1_000451_03.jpg"
  int pid = -1;      // identity as in the file name; 0 = distractor
  int camid = 0;     // 0-based camera
  int label = -1;    // contiguous 0..num_train_ids-1 in the train split, -1 elsewhere
};

enum class SplitKind { kTrain, kQuery, kGallery };
const char* split_dir(SplitKind kind);  // "bounding_box_train", "query", "bounding_box_test"

// A ReID dataset on disk: the three Market splits plus the optional side files.
struct Dataset {
  std::filesystem::path root;
  Layout layout = Layout::kMarket1501;
  std::vector<ImageRecord> train;
  std::vector<ImageRecord> query;
  std::vector<ImageRecord> gallery;
  int num_train_ids = 0;
  KeypointTable keypoints;                   // empty when keypoints.csv is absent
  AttributeTable attributes;                 // empty when attributes.csv is absent
  std::map<int, int> camera_municipality;    // 0-based camera -> 0-based municipality

  const std::vector<ImageRecord>& split(SplitKind kind) const;
  std::filesystem::path absolute(const ImageRecord& r) const { return root / r.path; }
  // nullptr when the image has no keypoints row.
  const Pose* pose(const ImageRecord& r) const;
};

struct LoadOptions {
  std::optional<Layout> layout;  // detected from the first split's file names when not given
  bool require_query_gallery = true;
  // false: a test-only dataset (query + gallery, e.g. a simulation's held-out split) loads with
  // an empty train split; needs require_query_gallery.
  bool require_train = true;
};

// Options that require exactly the splits present (non-empty directories) under `root`, for
// tools that process whatever a dataset has (de-identification, a site's store).
LoadOptions present_splits(const std::filesystem::path& root);

// Reads the directory layout and side files. Throws ppreid::Error for a missing directory, a
// missing or empty split, or an image whose name does not parse (naming the path).
Dataset load_dataset(const std::filesystem::path& root, const LoadOptions& options = {});

}  // namespace ppreid::data
