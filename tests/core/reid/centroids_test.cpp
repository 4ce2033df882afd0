#include "core/reid/centroids.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/reid/evaluation.h"
#include "core/util/error.h"
#include "tests/support/centroid_reference_case.h"
#include "tests/support/errors.h"
#include "tests/support/lcg.h"
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

CentroidOptions raw_options(CentroidProtocol protocol = CentroidProtocol::kStrict) {
  CentroidOptions o;
  o.protocol = protocol;
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
  o.protocol = CentroidProtocol::kStrict;
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

TEST(CentroidEvaluation, StrictByHand) {
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
                         Metric::kEuclidean, raw_options(CentroidProtocol::kAllCameras));
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
  normalized.protocol = CentroidProtocol::kStrict;
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

// ---------------------------------------------------------------------------------------------
// One hand-computed case, three protocols. Two cameras (0, 1); every feature is a unit vector at
// the given angle, so that every centroid below (the mean of one image, or normalized) is a unit
// vector and the squared Euclidean distance 2 - 2 cos(angle difference) ranks by angle.
//
//   gallery  pid 1 cam 0 at 150 deg (a) | pid 1 cam 1 at 60 (b)
//            pid 2 cam 0 at 100 (c)          seen by camera 0 only (its query too)
//            pid 3 cam 1 at 40 (d)           gallery-only: no query
//            pid 0 cam 1 at 350 (e)          distractor
//            pid 4 cam 0 at 20 (f) | pid 4 cam 1 at 100 (h)
//   queries  q0 pid 1 cam 0 at 0 | q1 pid 1 cam 1 at 90 | q2 pid 2 cam 0 at 200
//            q3 pid 4 cam 1 at 330
struct AngleCase {
  static torch::Tensor unit(const std::vector<double>& degrees) {
    std::vector<std::vector<double>> rows;
    for (double d : degrees) {
      const double r = d * M_PI / 180.0;
      rows.push_back({std::cos(r), std::sin(r)});
    }
    return matrix(rows);
  }
  torch::Tensor g = unit({150, 60, 100, 40, 350, 20, 100});
  std::vector<int> g_pids{1, 1, 2, 3, 0, 4, 4};
  std::vector<int> g_camids{0, 1, 0, 1, 1, 0, 1};
  torch::Tensor q = unit({0, 90, 200, 330});
  std::vector<int> q_pids{1, 1, 2, 4};
  std::vector<int> q_camids{0, 1, 0, 1};
};

struct ByHand {
  CentroidProtocol protocol;
  int valid_queries, total_queries;
  double map, minp;
  std::vector<double> cmc;
};

class CentroidProtocolByHand : public ::testing::TestWithParam<ByHand> {};

TEST_P(CentroidProtocolByHand, MetricsAsComputedByHand) {
  const ByHand& want = GetParam();
  AngleCase c;
  CentroidOptions o;
  o.protocol = want.protocol;
  RetrievalMetrics m = evaluate_centroids(c.q, c.q_pids, c.q_camids, c.g, c.g_pids, c.g_camids,
                                          Metric::kEuclidean, o);
  EXPECT_EQ(m.valid_queries, want.valid_queries);
  EXPECT_EQ(m.total_queries, want.total_queries);
  EXPECT_NEAR(m.map, want.map, 1e-12);
  EXPECT_NEAR(m.minp, want.minp, 1e-12);
  ASSERT_EQ(m.cmc.size(), want.cmc.size());
  for (size_t r = 0; r < want.cmc.size(); ++r) EXPECT_NEAR(m.cmc[r], want.cmc[r], 1e-12) << r;
  EXPECT_NEAR(m.rank1, want.cmc[0], 1e-12);
  EXPECT_NEAR(m.rank5, 1.0, 1e-12);  // every valid query has its match within 5
}

INSTANTIATE_TEST_SUITE_P(
    Protocols, CentroidProtocolByHand,
    ::testing::Values(
        // reference: centroids only for identities with queries, one per query camera, from the
        // other camera: R0 = pid 1 for camera 0 from {1} = b (60), R1 = pid 1 for camera 1 from
        // {0} = a (150), R2 = pid 4 for camera 1 from {0} = f (20). pid 2 has no image outside
        // camera 0: no centroid; pid 3 and the distractor have no query: no centroid.
        //   q0 (0): R1 removed (built from camera 0); R2 (20) before R0* (60): AP 1/2.
        //   q1 (90): R0 removed; R1* (60) before R2 (70): AP 1.
        //   q2: no centroid of pid 2 left: skipped.
        //   q3 (330): nothing removed (R2 comes from camera 0); R2* (50) first: AP 1.
        // mAP = mINP = (1/2 + 1 + 1) / 3 = 5/6; CMC over 3 centroids: 2/3, 1, 1.
        ByHand{CentroidProtocol::kReference, 3, 4, 5.0 / 6, 5.0 / 6, {2.0 / 3, 1, 1}},
        // strict: per query camera, every non-distractor identity without that camera's images,
        // plus the distractor as an item of its own.
        //   camera 0 (q0, q2): pid 1 = b (60), pid 3 = d (40), pid 4 = h (100), e (350).
        //     q0 (0): e (10), d (40), b* (60): AP 1/3. q2: pid 2 has no centroid: skipped.
        //   camera 1 (q1, q3): pid 1 = a (150), pid 2 = c (100), pid 4 = f (20), e (350).
        //     q1 (90): c (10), a* (60): AP 1/2. q3 (330): e (20), f* (50): AP 1/2.
        // mAP = mINP = (1/3 + 1/2 + 1/2) / 3 = 4/9; CMC over 4 items: 0, 2/3, 1, 1.
        ByHand{CentroidProtocol::kStrict, 3, 4, 4.0 / 9, 4.0 / 9, {0, 2.0 / 3, 1, 1}},
        // all-cameras: pid 1 = mean(a, b) -> 105, pid 2 = c (100), pid 3 = d (40),
        // pid 4 = mean(f, h) -> 60, e (350); q2 does not count (no cross-camera image).
        //   q0 (0): e (10), d (40), pid 4 (60), c (100), pid 1* (105): AP 1/5.
        //   q1 (90): c (10), pid 1* (15): AP 1/2. q3 (330): e (20), d (70), pid 4* (90): AP 1/3.
        // mAP = mINP = (1/5 + 1/2 + 1/3) / 3 = 31/90; CMC over 5 items: 0, 1/3, 2/3, 2/3, 1.
        ByHand{CentroidProtocol::kAllCameras,
               3,
               4,
               31.0 / 90,
               31.0 / 90,
               {0, 1.0 / 3, 2.0 / 3, 2.0 / 3, 1}}),
    [](const ::testing::TestParamInfo<ByHand>& info) {
      std::string name = to_string(info.param.protocol);
      std::erase(name, '-');
      return name;
    });

TEST(ReferenceCentroids, OnePerIdentityAndQueryCameraFromTheOtherCameras) {
  AngleCase c;
  ReferenceCentroids r = build_reference_centroids(c.g, c.g_pids, c.g_camids, c.q_pids, c.q_camids,
                                                   /*normalize=*/false);
  EXPECT_THAT(r.pids, ElementsAre(1, 1, 4));
  EXPECT_THAT(r.cameras, ElementsAre(ElementsAre(1), ElementsAre(0), ElementsAre(0)));
  EXPECT_TRUE(torch::allclose(r.features, c.g.index_select(0, torch::tensor({1, 0, 5})), 0, 0))
      << r.features;
}

TEST(ReferenceCentroids, AveragesRawFeaturesThenNormalizesAndSkipsRepeatedCameraSets) {
  // pid 7: gallery (2,0) cam 1, (0,4) cam 2, (9,9) cam 0; queries in cameras 0, 3 and 4.
  //  camera 0 -> mean of cams {1, 2} = (1, 2) (raw features averaged, then normalized);
  //  camera 3 -> all three images, cams {0, 1, 2}: (11/3, 13/3);
  //  camera 4 -> cams {0, 1, 2} again: not built twice. Junk (-1) is ignored on both sides.
  torch::Tensor g = matrix({{2, 0}, {0, 4}, {9, 9}, {5, 5}});
  std::vector<int> g_pids{7, 7, 7, -1}, g_camids{1, 2, 0, 1};
  std::vector<int> q_pids{7, 7, 7, -1}, q_camids{0, 3, 4, 2};
  ReferenceCentroids raw = build_reference_centroids(g, g_pids, g_camids, q_pids, q_camids, false);
  EXPECT_THAT(raw.pids, ElementsAre(7, 7));
  EXPECT_THAT(raw.cameras, ElementsAre(ElementsAre(1, 2), ElementsAre(0, 1, 2)));
  EXPECT_TRUE(torch::allclose(raw.features, matrix({{1, 2}, {11.0 / 3, 13.0 / 3}}), 0, 1e-15))
      << raw.features;
  ReferenceCentroids unit = build_reference_centroids(g, g_pids, g_camids, q_pids, q_camids, true);
  EXPECT_TRUE(
      torch::allclose(unit.features.norm(2, 1), torch::ones({2}, torch::kFloat64), 0, 1e-15));
  EXPECT_TRUE(torch::allclose(unit.features[0], matrix({{1, 2}})[0] / std::sqrt(5.0), 0, 1e-15));
}

TEST(ReferenceCentroids, QueryDropsOnlyItsOwnCentroidsContainingItsCamera) {
  // pid 1 gallery in cameras 1 and 2, queries in cameras 1 and 3:
  //  C0 = pid 1 for camera 1 from {2}: (0, 1); C1 = pid 1 for camera 3 from {1, 2}: (1, 1)/sqrt2.
  //  pid 2 (query camera 1) has gallery images in camera 1 only: no centroid.
  //  A query of pid 1 from camera 3 keeps both (two matches), from camera 1 only C0.
  torch::Tensor g = matrix({{1, 0}, {0, 1}, {1, 0}});
  std::vector<int> g_pids{1, 1, 2}, g_camids{1, 2, 1};
  torch::Tensor q = matrix({{1, 0}, {1, 0}, {0, 1}});
  std::vector<int> q_pids{1, 1, 2}, q_camids{3, 1, 1};
  RetrievalMetrics m =
      evaluate_centroids(q, q_pids, q_camids, g, g_pids, g_camids, Metric::kEuclidean);
  // q0 (1,0): C1 (0.586) then C0 (2): both matches, AP 1, INP 1. q1 (1,0): C1 removed, C0 at
  // rank 1: AP 1. q2: skipped.
  EXPECT_EQ(m.valid_queries, 2);
  EXPECT_EQ(m.total_queries, 3);
  EXPECT_DOUBLE_EQ(m.map, 1.0);
  EXPECT_DOUBLE_EQ(m.minp, 1.0);
  EXPECT_THAT(m.cmc, ElementsAre(1.0, 1.0));
}

TEST(ReferenceCentroids, ExactTiesAreRankedInCentroidOrder) {
  // pids 1 and 2 have the same gallery feature v = (1, 0), so their centroids P (pid 1) and
  // Q (pid 2) tie exactly for every query; pid 3's centroid is W = (0, 1). Queries (camera 0):
  //   pid 1 at 0 deg:  P = Q (0 deg), W (90):   stable order P* Q W          -> AP 1
  //   pid 2 at 60 deg: W (30), P = Q (60):      stable order W P Q*          -> AP 1/3
  //   pid 3 at 90 deg: W* (0) first                                          -> AP 1
  // mAP 7/9. Ties in reverse centroid order would give (1/2 + 1/2 + 1) / 3 = 2/3.
  torch::Tensor g = matrix({{1, 0}, {1, 0}, {0, 1}});
  torch::Tensor q = matrix({{1, 0}, {0.5, std::sqrt(3.0) / 2}, {0, 1}});
  RetrievalMetrics m =
      evaluate_centroids(q, {1, 2, 3}, {0, 0, 0}, g, {1, 2, 3}, {1, 1, 1}, Metric::kEuclidean);
  EXPECT_EQ(m.valid_queries, 3);
  EXPECT_NEAR(m.map, 7.0 / 9, 1e-12);
  EXPECT_NEAR(m.rank1, 2.0 / 3, 1e-12);
}

TEST(ReferenceCentroids, ErrorsSayWhatIsMissing) {
  AngleCase c;
  // Only pid 2 queries: it has no image outside camera 0, so there is no centroid at all.
  EXPECT_THAT(testing::error_of([&] {
                evaluate_centroids(c.q.slice(0, 2, 3), {2}, {0}, c.g, c.g_pids, c.g_camids,
                                   Metric::kEuclidean);
              }),
              HasSubstr("built no centroid"));
  EXPECT_THAT(testing::error_of([&] {
                evaluate_centroids(c.q.slice(0, 0, 1), {-1}, {0}, c.g, c.g_pids, c.g_camids,
                                   Metric::kEuclidean);
              }),
              HasSubstr("pid -1 (junk"));
  EXPECT_THAT(
      testing::error_of([&] {
        evaluate_centroids(c.q, c.q_pids, {0, 1}, c.g, c.g_pids, c.g_camids, Metric::kEuclidean);
      }),
      HasSubstr("query has 4 feature rows but 4 pids and 2 camids"));
}

TEST(CentroidProtocolNames, ParseAndPrint) {
  for (CentroidProtocol p :
       {CentroidProtocol::kReference, CentroidProtocol::kStrict, CentroidProtocol::kAllCameras})
    EXPECT_EQ(parse_centroid_protocol(to_string(p)), p);
  EXPECT_EQ(to_string(CentroidOptions{}.protocol), "reference");
  EXPECT_THAT(testing::error_of([] { parse_centroid_protocol("paper"); }),
              HasSubstr("unknown centroid protocol 'paper'; use 'reference'"));
}

// ---------------------------------------------------------------------------------------------
// The reference protocol against an independent NumPy implementation of centroids-reid's
// evaluation (tests/reference/eval_centroids_reference.py) on a random case with ties.

using testing::kCentroidReference;

TEST(CentroidReference, LcgMatchesPython) {
  testing::Lcg rng(20250301);
  EXPECT_EQ(rng.next(), 799402852u);
  EXPECT_EQ(rng.next(), 1383833099u);
  EXPECT_EQ(rng.next(), 8115956u);
}

TEST(CentroidReference, MatchesNumpyOnARandomCaseWithTies) {
  const testing::CentroidReferenceCase c = testing::make_centroid_reference_case();
  ReferenceCentroids centroids = build_reference_centroids(
      c.gallery.features, c.gallery.pids, c.gallery.camids, c.query.pids, c.query.camids, true);
  EXPECT_THAT(centroids.pids, ElementsAre(1, 1, 2, 3, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9));
  RetrievalMetrics m =
      evaluate_centroids(c.query.features, c.query.pids, c.query.camids, c.gallery.features,
                         c.gallery.pids, c.gallery.camids, Metric::kEuclidean);
  EXPECT_EQ(m.total_queries, kCentroidReference.total_queries);
  EXPECT_EQ(m.valid_queries, kCentroidReference.valid_queries);
  EXPECT_NEAR(m.map, kCentroidReference.map, 1e-6);
  EXPECT_NEAR(m.minp, kCentroidReference.minp, 1e-6);
  ASSERT_EQ(m.cmc.size(), kCentroidReference.cmc.size());
  for (size_t r = 0; r < m.cmc.size(); ++r)
    EXPECT_NEAR(m.cmc[r], kCentroidReference.cmc[r], 1e-6) << "rank " << r + 1;
  EXPECT_NEAR(m.rank1, kCentroidReference.cmc[0], 1e-6);
  EXPECT_NEAR(m.rank5, kCentroidReference.cmc[4], 1e-6);
  EXPECT_NEAR(m.rank10, kCentroidReference.cmc[9], 1e-6);
}

TEST(CentroidReference, ThreadCountDoesNotChangeTheResult) {
  const testing::CentroidReferenceCase c = testing::make_centroid_reference_case();
  const int before = torch::get_num_threads();
  auto run = [&](int threads) {
    torch::set_num_threads(threads);
    return evaluate_centroids(c.query.features, c.query.pids, c.query.camids, c.gallery.features,
                              c.gallery.pids, c.gallery.camids, Metric::kEuclidean);
  };
  RetrievalMetrics one = run(1), two = run(2);
  torch::set_num_threads(before);
  EXPECT_EQ(one.map, two.map);
  EXPECT_EQ(one.cmc, two.cmc);
}

}  // namespace
}  // namespace ppreid::reid
