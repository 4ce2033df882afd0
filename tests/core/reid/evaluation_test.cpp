#include "core/reid/evaluation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>
#include <span>
#include <vector>

#include "core/reid/distance.h"
#include "core/util/error.h"
#include "tests/support/errors.h"
#include "tests/support/lcg.h"
#include "tests/support/tensors.h"

namespace ppreid::reid {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

using testing::matrix;

using testing::error_of;

// ---------------------------------------------------------------------------------------------
// Distances

TEST(Distance, SquaredEuclideanByHand) {
  torch::Tensor q = matrix({{1, 0}, {0, 2}});
  torch::Tensor g = matrix({{1, 0}, {3, 4}, {0, 0}});
  torch::Tensor d =
      pairwise_distance(q.to(torch::kFloat32), g.to(torch::kFloat32), Metric::kEuclidean);
  EXPECT_EQ(d.scalar_type(), torch::kFloat64);
  ASSERT_EQ(d.sizes(), (std::vector<int64_t>{2, 3}));
  // (1,0)-(3,4): 2^2 + 4^2 = 20; (0,2)-(1,0): 1 + 4 = 5; (0,2)-(3,4): 9 + 4 = 13.
  EXPECT_TRUE(torch::equal(d, matrix({{0, 20, 1}, {5, 13, 4}}))) << d;
}

TEST(Distance, CosineByHand) {
  torch::Tensor q = matrix({{1, 0}, {0, 2}});
  torch::Tensor g = matrix({{1, 0}, {3, 4}, {0, 0}});
  torch::Tensor d = pairwise_distance(q, g, Metric::kCosine);
  // cos((1,0),(3,4)) = 3/5; cos((0,2),(3,4)) = 8/10; a zero vector is at distance 1.
  EXPECT_TRUE(torch::allclose(d, matrix({{0, 0.4, 1}, {1, 0.2, 1}}), 0, 1e-15)) << d;
}

TEST(Distance, ThreadedBlocksMatchTheDirectFormula) {
  torch::manual_seed(5);
  torch::Tensor q = torch::randn({101, 16}, torch::kFloat64), g = torch::randn({37, 16});
  const int before = torch::get_num_threads();
  torch::set_num_threads(2);  // 101 rows -> blocks of 51 and 50
  torch::Tensor e = pairwise_distance(q, g, Metric::kEuclidean);
  torch::Tensor c = pairwise_distance(q, g, Metric::kCosine);
  torch::set_num_threads(before);
  torch::Tensor g64 = g.to(torch::kFloat64);
  torch::Tensor direct = (q.unsqueeze(1) - g64.unsqueeze(0)).square().sum(2);
  EXPECT_TRUE(torch::allclose(e, direct, 0, 1e-12));
  torch::Tensor cos = torch::cosine_similarity(q.unsqueeze(1), g64.unsqueeze(0), 2);
  EXPECT_TRUE(torch::allclose(c, 1 - cos, 0, 1e-12));
}

TEST(Distance, RejectsBadShapesAndValues) {
  torch::Tensor ok = torch::ones({2, 3});
  EXPECT_THAT(error_of([&] { pairwise_distance(torch::ones({3}), ok, Metric::kCosine); }),
              HasSubstr("query features must be a 2-D tensor"));
  EXPECT_THAT(error_of([&] {
                pairwise_distance(ok, torch::ones({0, 3}), Metric::kCosine);
              }),
              HasSubstr("gallery features are empty"));
  EXPECT_THAT(error_of([&] {
                pairwise_distance(ok, torch::ones({2, 4}), Metric::kEuclidean);
              }),
              HasSubstr("query features have dimension 3 but gallery features have 4"));
  torch::Tensor nan_q = torch::ones({13, 3});
  nan_q[12][1] = std::nan("");
  EXPECT_THAT(error_of([&] { pairwise_distance(nan_q, ok, Metric::kEuclidean); }),
              HasSubstr("query feature 12 contains NaN"));
  torch::Tensor inf_g = torch::ones({4, 3});
  inf_g[2][0] = -std::numeric_limits<float>::infinity();
  EXPECT_THAT(error_of([&] { pairwise_distance(ok, inf_g, Metric::kCosine); }),
              HasSubstr("gallery feature 2 contains Inf"));
}

TEST(Distance, ParsesMetricNames) {
  EXPECT_EQ(parse_metric("euclidean"), Metric::kEuclidean);
  EXPECT_EQ(parse_metric("cosine"), Metric::kCosine);
  EXPECT_EQ(to_string(Metric::kCosine), "cosine");
  EXPECT_THROW(parse_metric("manhattan"), UsageError);
}

// ---------------------------------------------------------------------------------------------
// Market protocol on hand-made distance matrices

// Gallery: g0 (pid 1, cam 0), g1 (2, 1), g2 (1, 1), g3 (distractor, cam 2), g4 (1, 2), g5 (3, 0).
struct SmallCase {
  std::vector<int> g_pids{1, 2, 1, 0, 1, 3};
  std::vector<int> g_camids{0, 1, 1, 2, 2, 0};
  // q0 (pid 1, cam 0): g0 is the same person in the same camera and is removed, leaving
  //   g1 g2* g3 g4* g5 -> matches at positions 1 and 3: AP = (1/2 + 2/4) / 2 = 1/2,
  //   INP = 2 / 4 = 1/2, first match at rank 2.
  // q1 (pid 3, cam 0): its only gallery image g5 is in the query's camera -> skipped.
  // q2 (pid 2, cam 0): ranking g2 g3 g4 g5 g0 g1*, the distractor g3 ranks high but never
  //   matches -> AP = INP = 1/6, first match at rank 6.
  std::vector<int> q_pids{1, 3, 2};
  std::vector<int> q_camids{0, 0, 0};
  torch::Tensor distmat = matrix({{0.1, 0.2, 0.3, 0.4, 0.5, 0.6},
                                  {0.6, 0.5, 0.4, 0.3, 0.2, 0.1},
                                  {0.5, 0.9, 0.1, 0.2, 0.3, 0.4}});
};

TEST(Evaluation, HandComputedMarketCase) {
  SmallCase c;
  RetrievalMetrics m = evaluate_market(c.distmat, c.q_pids, c.g_pids, c.q_camids, c.g_camids);
  EXPECT_EQ(m.total_queries, 3);
  EXPECT_EQ(m.valid_queries, 2);
  EXPECT_DOUBLE_EQ(m.map, (0.5 + 1.0 / 6) / 2);
  EXPECT_DOUBLE_EQ(m.minp, (0.5 + 1.0 / 6) / 2);
  EXPECT_DOUBLE_EQ(m.rank1, 0.0);
  EXPECT_DOUBLE_EQ(m.rank5, 0.5);
  EXPECT_DOUBLE_EQ(m.rank10, 1.0);
  // max_rank 50 > 6 gallery images: truncated to 6 as torchreid does.
  EXPECT_THAT(m.cmc, ElementsAre(0.0, 0.5, 0.5, 0.5, 0.5, 1.0));
}

TEST(Evaluation, PerQueryOutcomes) {
  SmallCase c;
  std::vector<QueryOutcome> o = rank_queries(c.distmat, c.q_pids, c.g_pids, c.q_camids, c.g_camids);
  ASSERT_EQ(o.size(), 3u);
  EXPECT_TRUE(o[0].valid);
  EXPECT_EQ(o[0].num_rel, 2);
  EXPECT_EQ(o[0].first_match, 1);
  EXPECT_EQ(o[0].last_match, 3);
  EXPECT_FALSE(o[1].valid);
  EXPECT_EQ(o[2].first_match, 5);
  EXPECT_EQ(o[2].last_match, 5);
}

TEST(Evaluation, RolesDecideWhatIsRankedAndWhatMatches) {
  // One query, distances 0.1 < 0.2 < 0.3 < 0.4; g2 and g3 match. g0 removed: ranking g1 g2* g3*
  // -> AP = (1/2 + 2/3) / 2 = 7/12. g0 a non-match instead: g0 g1 g2* g3* -> (1/3 + 2/4) / 2.
  torch::Tensor d = matrix({{0.1, 0.2, 0.3, 0.4}});
  for (GalleryRole g0 : {GalleryRole::kRemoved, GalleryRole::kNonMatch}) {
    std::vector<QueryOutcome> o = rank_queries(d, [&](int64_t, std::span<GalleryRole> role) {
      role[0] = g0;
      role[2] = role[3] = GalleryRole::kMatch;
    });
    ASSERT_EQ(o.size(), 1u);
    EXPECT_TRUE(o[0].valid);
    EXPECT_EQ(o[0].num_rel, 2);
    const bool removed = g0 == GalleryRole::kRemoved;
    EXPECT_EQ(o[0].first_match, removed ? 1 : 2);
    EXPECT_EQ(o[0].last_match, removed ? 2 : 3);
    EXPECT_DOUBLE_EQ(o[0].ap, removed ? 7.0 / 12 : 5.0 / 12);
  }
  // No kMatch: the query is skipped.
  EXPECT_FALSE(rank_queries(d, [](int64_t, std::span<GalleryRole>) {})[0].valid);
}

TEST(Evaluation, MaxRankTruncatesCmcOnly) {
  SmallCase c;
  RetrievalMetrics m = evaluate_market(c.distmat, c.q_pids, c.g_pids, c.q_camids, c.g_camids, 3);
  EXPECT_THAT(m.cmc, ElementsAre(0.0, 0.5, 0.5));
  EXPECT_DOUBLE_EQ(m.rank10, 1.0);  // computed from the first-match positions, not the CMC
  EXPECT_DOUBLE_EQ(m.map, (0.5 + 1.0 / 6) / 2);
}

TEST(Evaluation, Float32DistancesGiveTheSameResult) {
  SmallCase c;
  RetrievalMetrics m =
      evaluate_market(c.distmat.to(torch::kFloat32), c.q_pids, c.g_pids, c.q_camids, c.g_camids);
  EXPECT_DOUBLE_EQ(m.map, (0.5 + 1.0 / 6) / 2);
  EXPECT_EQ(m.valid_queries, 2);
}

TEST(Evaluation, TiesAreBrokenByGalleryIndex) {
  // All four distances equal: the stable order is g0 g1 g2 g3.
  std::vector<int> g_pids{2, 1, 3, 1}, g_camids{1, 1, 2, 2};
  // q0 (pid 1): matches g1, g3 at positions 1, 3 -> AP = (1/2 + 2/4)/2 = 1/2, INP = 2/4.
  // q1 (pid 2): match g0 at position 0 -> AP = INP = 1.
  // q2 (pid 1) with g3 strictly closer: g3* g0 g1* g2 -> AP = (1 + 2/3)/2 = 5/6, INP = 2/3.
  torch::Tensor d = matrix({{1, 1, 1, 1}, {1, 1, 1, 1}, {1, 1, 1, 0.5}});
  RetrievalMetrics m = evaluate_market(d, {1, 2, 1}, g_pids, {0, 0, 0}, g_camids);
  EXPECT_EQ(m.valid_queries, 3);
  EXPECT_DOUBLE_EQ(m.map, (0.5 + 1.0 + 5.0 / 6) / 3);
  EXPECT_DOUBLE_EQ(m.minp, (0.5 + 1.0 + 2.0 / 3) / 3);
  EXPECT_DOUBLE_EQ(m.rank1, 2.0 / 3);
  EXPECT_THAT(m.cmc, ElementsAre(2.0 / 3, 1.0, 1.0, 1.0));
}

TEST(Evaluation, DistractorsNeverMatch) {
  // The query's only match is behind two distractors (pid 0): rank 3.
  torch::Tensor d = matrix({{0.1, 0.2, 0.3}});
  RetrievalMetrics m = evaluate_market(d, {7}, {0, 0, 7}, {1}, {1, 2, 3});
  EXPECT_DOUBLE_EQ(m.map, 1.0 / 3);
  EXPECT_DOUBLE_EQ(m.minp, 1.0 / 3);
  EXPECT_THAT(m.cmc, ElementsAre(0.0, 0.0, 1.0));
}

TEST(Evaluation, NoValidQueryIsAnError) {
  torch::Tensor d = matrix({{0.1, 0.2}});
  EXPECT_THAT(error_of([&] {
                evaluate_market(d, {1}, {1, 2}, {0}, {0, 1});
              }),
              HasSubstr("no query has a cross-camera match in the gallery"));
}

TEST(Evaluation, RejectsInconsistentInputs) {
  torch::Tensor d = matrix({{0.1, 0.2}});
  EXPECT_THAT(error_of([&] {
                evaluate_market(d, {1}, {1, 2, 3}, {0}, {0, 1});
              }),
              HasSubstr("g_pids has 3 entries but the distance matrix has 2 columns"));
  EXPECT_THAT(error_of([&] {
                evaluate_market(d, {1, 2}, {1, 2}, {0}, {0, 1});
              }),
              HasSubstr("q_pids has 2 entries"));
  EXPECT_THAT(error_of([&] {
                evaluate_market(d, {1}, {1, 2}, {0}, {1, 1}, 0);
              }),
              HasSubstr("max_rank must be at least 1"));
  torch::Tensor nan_d = matrix({{0.1, std::nan("")}});
  EXPECT_THAT(error_of([&] {
                evaluate_market(nan_d, {1}, {1, 2}, {0}, {1, 1});
              }),
              HasSubstr("contains NaN"));
}

TEST(Evaluation, FeaturesUseSquaredEuclideanRanking) {
  // Query (0,0) pid 1 cam 0; gallery (2,0) pid 1 cam 1 at d=4, (1,0) pid 5 at d=1.
  torch::Tensor q = matrix({{0, 0}});
  torch::Tensor g = matrix({{2, 0}, {1, 0}});
  RetrievalMetrics m = evaluate_features(q, {1}, {0}, g, {1, 5}, {1, 1}, Metric::kEuclidean);
  EXPECT_DOUBLE_EQ(m.map, 0.5);
  EXPECT_DOUBLE_EQ(m.rank1, 0.0);
  nlohmann::json j = m.to_json();
  EXPECT_DOUBLE_EQ(j.at("mAP").get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(j.at("mINP").get<double>(), 0.5);
  EXPECT_EQ(j.at("valid_queries").get<int>(), 1);
  EXPECT_EQ(j.at("total_queries").get<int>(), 1);
  EXPECT_TRUE(j.at("total_queries").is_number_integer());
  for (const char* key : {"rank1", "rank5", "rank10"}) EXPECT_TRUE(j.contains(key)) << key;
}

// ---------------------------------------------------------------------------------------------
// Reference values from an independent NumPy implementation of torchreid's eval_market1501

// The 64-bit LCG of tests/reference/eval_market1501_reference.py.
using testing::Lcg;

struct ReferenceCase {
  torch::Tensor distmat;
  std::vector<int> q_pids, g_pids, q_camids, g_camids;
};

// Same draws in the same order as make_case() in the Python script.
ReferenceCase make_reference_case() {
  const int num_q = 40, num_g = 200, num_cams = 8, num_ids = 30, max_distance = 20;
  Lcg rng(20240607);
  ReferenceCase c;
  for (int j = 0; j < num_g; ++j) {
    const int pid = rng.below(num_ids + 10);
    c.g_pids.push_back(pid > num_ids ? 0 : pid);
    c.g_camids.push_back(rng.below(num_cams));
  }
  for (int i = 0; i < num_q; ++i) {
    c.q_pids.push_back(1 + rng.below(num_ids + 2));
    c.q_camids.push_back(rng.below(num_cams));
  }
  c.distmat = torch::empty({num_q, num_g}, torch::kFloat64);
  auto acc = c.distmat.accessor<double, 2>();
  for (int i = 0; i < num_q; ++i)
    for (int j = 0; j < num_g; ++j) acc[i][j] = rng.below(max_distance);
  return c;
}

TEST(EvaluationReference, LcgMatchesPython) {
  Lcg rng(20240607);
  EXPECT_EQ(rng.next(), 2012726711u);
  EXPECT_EQ(rng.next(), 679525039u);
  EXPECT_EQ(rng.next(), 1743979489u);
}

TEST(EvaluationReference, MatchesNumpyEvalMarket1501) {
  // Produced by: /usr/bin/python3 tests/reference/eval_market1501_reference.py
  // (NumPy 1.24.2; the distances are integers in [0, 20), 7200 tied values over the 40 rows, so
  // the values depend on the stable tie rule: reversing the gallery order gives mAP 0.04311.)
  ReferenceCase c = make_reference_case();
  RetrievalMetrics m = evaluate_market(c.distmat, c.q_pids, c.g_pids, c.q_camids, c.g_camids);
  EXPECT_EQ(m.total_queries, 40);
  EXPECT_EQ(m.valid_queries, 39);
  EXPECT_NEAR(m.map, 0.04998394985462063, 1e-6);
  EXPECT_NEAR(m.rank1, 0.025641025975346565, 1e-6);
  EXPECT_NEAR(m.rank5, 0.12820513546466827, 1e-6);
  EXPECT_NEAR(m.rank10, 0.23076923191547394, 1e-6);
  EXPECT_NEAR(m.minp, 0.03383378563931107, 1e-6);
  EXPECT_NEAR(m.cmc[9], m.rank10, 1e-12);
}

TEST(EvaluationReference, ThreadCountDoesNotChangeTheResult) {
  ReferenceCase c = make_reference_case();
  const int before = torch::get_num_threads();
  torch::set_num_threads(1);
  RetrievalMetrics one = evaluate_market(c.distmat, c.q_pids, c.g_pids, c.q_camids, c.g_camids);
  torch::set_num_threads(2);
  RetrievalMetrics two = evaluate_market(c.distmat, c.q_pids, c.g_pids, c.q_camids, c.g_camids);
  torch::set_num_threads(before);
  EXPECT_EQ(one.map, two.map);
  EXPECT_EQ(one.minp, two.minp);
  EXPECT_EQ(one.cmc, two.cmc);
}

TEST(EvaluationReference, RoleOverloadReproducesThePidOverload) {
  // Market's rule written as roles must give bit-identical outcomes, float64 and float32.
  ReferenceCase c = make_reference_case();
  auto market = [&](int64_t q, std::span<GalleryRole> role) {
    for (size_t g = 0; g < c.g_pids.size(); ++g)
      if (c.g_pids[g] == c.q_pids[q])
        role[g] = c.g_camids[g] == c.q_camids[q] ? GalleryRole::kRemoved : GalleryRole::kMatch;
  };
  for (torch::Tensor d : {c.distmat, c.distmat.to(torch::kFloat32)}) {
    std::vector<QueryOutcome> a = rank_queries(d, c.q_pids, c.g_pids, c.q_camids, c.g_camids);
    std::vector<QueryOutcome> b = rank_queries(d, market);
    ASSERT_EQ(a.size(), b.size());
    for (size_t q = 0; q < a.size(); ++q) {
      EXPECT_EQ(a[q].valid, b[q].valid) << q;
      EXPECT_EQ(a[q].num_rel, b[q].num_rel) << q;
      EXPECT_EQ(a[q].first_match, b[q].first_match) << q;
      EXPECT_EQ(a[q].last_match, b[q].last_match) << q;
      EXPECT_EQ(a[q].ap, b[q].ap) << q;
    }
  }
}

}  // namespace
}  // namespace ppreid::reid
