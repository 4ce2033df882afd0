#pragma once

#include <nlohmann/json.hpp>

#include "core/data/dataset.h"

namespace ppreid::data {

struct SplitSummary {
  int images = 0;
  int ids = 0;        // distinct pids, distractors (pid 0) excluded
  int cameras = 0;    // distinct cameras
  int distractors = 0;
  int with_keypoints = 0;  // images that have a keypoints.csv row
  int with_torso = 0;      // ... whose shoulders and hips are all visible
};

// What `ppreid data inspect` reports: counts per split and side-file coverage.
struct DatasetSummary {
  std::string root;
  std::string layout;
  SplitSummary train, query, gallery;
  int attribute_ids = 0;  // identities (pid > 0) with an attributes.csv row
  int total_ids = 0;      // identities (pid > 0) over all splits
  int municipalities = 0; // distinct municipalities in municipalities.csv (0 if absent)

  nlohmann::json to_json() const;
  std::string to_text() const;
};

DatasetSummary summarize(const Dataset& ds);

// Decodes every image; throws ppreid::Error naming the first file that cannot be decoded.
void verify_images(const Dataset& ds, int threads);

}  // namespace ppreid::data
