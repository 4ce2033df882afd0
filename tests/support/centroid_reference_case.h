#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <vector>

#include "core/reid/feature_files.h"
#include "tests/support/lcg.h"

namespace ppreid::testing {

// The random case of tests/reference/eval_centroids_reference.py: the same LCG draws in the
// same order as its make_case() with the default arguments (30 queries, 60 gallery images, 4
// cameras, 12 identities, 4-d features from a palette of 3 vectors in {-1, 0, 1}^4). Gallery:
// distractors (pid 0), junk (-1), gallery-only pids 11 and 12, pid 10 seen by camera 0 only.
// Queries: junk, a pid absent from the gallery, same-camera images of most identities.
struct CentroidReferenceCase {
  reid::FeatureSet query, gallery;
};

inline CentroidReferenceCase make_centroid_reference_case() {
  const int num_q = 30, num_g = 60, num_cams = 4, num_ids = 12, dim = 4, palette = 3;
  const int junk = -1, one_camera = num_ids - 2;
  Lcg rng(20250301);
  std::vector<std::vector<float>> colors(palette);
  for (auto& c : colors)
    for (int k = 0; k < dim; ++k) c.push_back(static_cast<float>(rng.below(3)) - 1.0f);
  auto draw = [&](reid::FeatureSet& set, int pid, int cam, std::vector<float>& values) {
    set.pids.push_back(pid);
    set.camids.push_back(pid == one_camera ? 0 : cam);
    const auto& c = colors[rng.below(palette)];
    values.insert(values.end(), c.begin(), c.end());
  };
  CentroidReferenceCase out;
  std::vector<float> g_values, q_values;
  for (int j = 0; j < num_g; ++j) {
    const int r = rng.below(num_ids + 3);
    const int pid = r == 0 ? junk : (r > num_ids ? 0 : r);
    const int cam = rng.below(num_cams);
    draw(out.gallery, pid, cam, g_values);
  }
  for (int i = 0; i < num_q; ++i) {
    const int r = rng.below(num_ids);
    int pid = 0;
    if (r == 0)
      pid = rng.below(2) == 0 ? junk : num_ids + 5;
    else
      pid = std::min(r, one_camera);
    const int cam = rng.below(num_cams);
    draw(out.query, pid, cam, q_values);
  }
  out.gallery.features = torch::tensor(g_values).reshape({num_g, dim});
  out.query.features = torch::tensor(q_values).reshape({num_q, dim});
  return out;
}

// What the script prints for that case: the reference protocol's figures (Euclidean, features
// normalized, ties in centroid order).
// Produced by: /usr/bin/python3 tests/reference/eval_centroids_reference.py (NumPy 1.24.2)
//   gallery: 60 images, distractors 7, junk 6, gallery-only pids [11, 12]; queries: 30, junk 2
//   centroids 14: pids [1, 1, 2, 3, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9]
//   tied distances (per-row duplicates) 140, removed same-camera centroids 11, queries with
//   several matches 5; valid_queries 24 of 28
//   (ties ranked in reverse centroid order instead: mAP 0.24027488714988712, so the values
//   depend on the tie rule)
struct CentroidReferenceValues {
  int total_queries, valid_queries;
  double map, minp;
  std::array<double, 14> cmc;  // ranks 1..14 (as many as centroids)
};

inline constexpr CentroidReferenceValues kCentroidReference{
    28,
    24,
    0.21698764198764198,
    0.22148395585895586,
    {0.08333333333333333, 0.08333333333333333, 0.16666666666666666, 0.16666666666666666, 0.25,
     0.4166666666666667, 0.4583333333333333, 0.5, 0.625, 0.7083333333333334, 0.75,
     0.8333333333333334, 1.0, 1.0}};

}  // namespace ppreid::testing
