#include "core/reid/centroids.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <vector>

#include "core/reid/evaluation.h"
#include "core/util/error.h"
#include "tests/support/tensors.h"

namespace ppreid::reid {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

using testing::matrix;

// g0 pid 1 cam 0 (1,0) | g1 pid 1 cam 1 (3,0) | g2 pid 1 cam 2 (0,4)
// g3 distractor cam 1 (5,5) | g4 distractor cam 2 (6,6) | g5 pid 2 cam 0 (0,1)
struct Gallery {
  torch::Tensor features = matrix({{1, 0}, {3, 0}, {0, 4}, {5, 5}, {6, 6}, {0, 1}});
  std::vector<int> pids{1, 1, 1, 0, 0, 2};
  std::vector<int> camids{0, 1, 2, 1, 2, 0};
};

CentroidOptions raw_options(CentroidMode mode = CentroidMode::kPerQueryCamera) {
  CentroidOptions o;
  o.mode = mode;
  o.normalize = false;
  return o;
}

TEST(CentroidGallery, ExcludesTheQueryCameraAndKeepsDistractorsApart) {
  Gallery g;
  CentroidGallery c = build_centroid_gallery(g.features, g.pids, g.camids, 0, raw_options());
  // For camera 0: pid 1 averages g1 and g2 only -> (1.5, 2); pid 2 has no image outside camera 0
  // and gets no centroid; both distractors stay individual items with their own cameras.
  EXPECT_THAT(c.pids, ElementsAre(1, 0, 0));
  EXPECT_THAT(c.camids, ElementsAre(kCentroidCamid, 1, 2));
  EXPECT_TRUE(torch::equal(c.features, matrix({{1.5, 2}, {5, 5}, {6, 6}}))) << c.features;
}

TEST(CentroidGallery, NormalizesCentroidsOnly) {
  Gallery g;
  CentroidOptions o;  // normalize defaults to true
  CentroidGallery c = build_centroid_gallery(g.features, g.pids, g.camids, 0, o);
  // (1.5, 2) has norm 2.5; the distractors are left as they are.
  EXPECT_TRUE(torch::allclose(c.features, matrix({{0.6, 0.8}, {5, 5}, {6, 6}}), 0, 1e-15))
      << c.features;
}

TEST(CentroidGallery, AllCamerasAveragesEveryImage) {
  Gallery g;
  CentroidGallery c =
      build_centroid_gallery(g.features, g.pids, g.camids, std::nullopt, raw_options());
  EXPECT_THAT(c.pids, ElementsAre(1, 2, 0, 0));
  EXPECT_TRUE(
      torch::allclose(c.features, matrix({{4.0 / 3, 4.0 / 3}, {0, 1}, {5, 5}, {6, 6}}), 0, 1e-15))
      << c.features;
}

// q0 pid 1 cam 0 (1.5, 2) | q1 pid 2 cam 0 (0, 1) | q2 pid 1 cam 1 (5.5, 5.5)
struct Queries {
  torch::Tensor features = matrix({{1.5, 2}, {0, 1}, {5.5, 5.5}});
  std::vector<int> pids{1, 2, 1};
  std::vector<int> camids{0, 0, 1};
};

TEST(CentroidEvaluation, PerQueryCameraByHand) {
  Gallery g;
  Queries q;
  RetrievalMetrics m = evaluate_centroids(q.features, q.pids, q.camids, g.features, g.pids,
                                          g.camids, Metric::kEuclidean, raw_options());
  // q0 sees [c1 (1.5,2), g3, g4]: its centroid is at distance 0 -> AP 1.
  // q1: pid 2 only has a camera-0 image -> no centroid, skipped (as in the instance protocol).
  // q2 sees [c1 = mean(g0,g2) = (0.5,2), c2 = g5 = (0,1), g3, g4] at squared distances
  //   37.25, 50.5, 0.5, 0.5 -> g3 g4 (tie, gallery order) c1* c2: AP = INP = 1/3.
  EXPECT_EQ(m.total_queries, 3);
  EXPECT_EQ(m.valid_queries, 2);
  EXPECT_DOUBLE_EQ(m.map, (1 + 1.0 / 3) / 2);
  EXPECT_DOUBLE_EQ(m.minp, (1 + 1.0 / 3) / 2);
  EXPECT_DOUBLE_EQ(m.rank1, 0.5);
  EXPECT_DOUBLE_EQ(m.rank5, 1.0);
  // CMC length: the largest per-camera gallery has 4 items.
  EXPECT_THAT(m.cmc, ElementsAre(0.5, 0.5, 1.0, 1.0));

  RetrievalMetrics instance = evaluate_features(q.features, q.pids, q.camids, g.features, g.pids,
                                                g.camids, Metric::kEuclidean);
  EXPECT_EQ(instance.valid_queries, m.valid_queries);
}

TEST(CentroidEvaluation, AllCamerasKeepsTheInstanceValidQueries) {
  Gallery g;
  Queries q;
  RetrievalMetrics m =
      evaluate_centroids(q.features, q.pids, q.camids, g.features, g.pids, g.camids,
                         Metric::kEuclidean, raw_options(CentroidMode::kAllCameras));
  // q0: c1 = (4/3, 4/3) is nearest -> AP 1. q1 would find c2 but has no cross-camera image, so
  // it is not counted. q2: g3 g4 c1* c2 -> AP 1/3.
  EXPECT_EQ(m.valid_queries, 2);
  EXPECT_DOUBLE_EQ(m.map, (1 + 1.0 / 3) / 2);
  EXPECT_DOUBLE_EQ(m.rank1, 0.5);
}

TEST(CentroidEvaluation, CosineIsScaleInvariant) {
  Gallery g;
  Queries q;
  CentroidOptions normalized;
  RetrievalMetrics a = evaluate_centroids(q.features, q.pids, q.camids, g.features, g.pids,
                                          g.camids, Metric::kCosine, raw_options());
  RetrievalMetrics b = evaluate_centroids(q.features, q.pids, q.camids, g.features, g.pids,
                                          g.camids, Metric::kCosine, normalized);
  EXPECT_DOUBLE_EQ(a.map, b.map);
  EXPECT_EQ(a.valid_queries, 2);
}

TEST(CentroidEvaluation, RejectsBadInputs) {
  Gallery g;
  Queries q;
  try {
    evaluate_centroids(q.features, {1, 2}, q.camids, g.features, g.pids, g.camids, Metric::kCosine);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("query has 3 feature rows but 2 pids"));
  }
  torch::Tensor bad = g.features.clone();
  bad[4][1] = std::nan("");
  try {
    evaluate_centroids(q.features, q.pids, q.camids, bad, g.pids, g.camids, Metric::kCosine);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("gallery feature 4 contains NaN"));
  }
  // Only same-camera images: no query is valid.
  EXPECT_THROW(evaluate_centroids(q.features.slice(0, 1, 2), {2}, {0}, g.features, g.pids, g.camids,
                                  Metric::kCosine),
               Error);
}

}  // namespace
}  // namespace ppreid::reid
