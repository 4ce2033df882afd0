#include "core/reid/losses.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "core/util/error.h"
#include "tests/support/errors.h"

namespace ppreid::reid {
namespace {

torch::Tensor longs(std::vector<int64_t> v) { return torch::tensor(v, torch::kLong); }

// 1-D points as [N,1] features that require grad.
torch::Tensor points(std::vector<float> v) {
  return torch::tensor(v).view({-1, 1}).set_requires_grad(true);
}

void expect_finite_nonzero_grad(const torch::Tensor& t) {
  ASSERT_TRUE(t.grad().defined());
  EXPECT_TRUE(torch::isfinite(t.grad()).all().item<bool>());
  EXPECT_GT(t.grad().abs().sum().item<double>(), 0.0);
}

using testing::expect_error_containing;

TEST(LossLabelSmooth, MatchesHandComputedValue) {
  // Row 0: logits [0,0,0] -> log_softmax = -ln3 everywhere; q sums to 1, so loss0 = ln3.
  // Row 1: logits [0,ln2,0] -> softmax [1/4,1/2,1/4]; target 1, eps 0.1, C 3:
  //   q = [1/30, 0.9 + 1/30, 1/30] = [1/30, 28/30, 1/30]
  //   loss1 = 2 * (1/30) * ln4 + (28/30) * ln2 = (4/30 + 28/30) ln2 = (32/30) ln2 = 0.7393572
  // mean = (1.0986123 + 0.7393572) / 2 = 0.9189847.
  torch::Tensor logits =
      torch::tensor({0.0f, 0.0f, 0.0f, 0.0f, static_cast<float>(std::log(2.0)), 0.0f})
          .view({2, 3})
          .set_requires_grad(true);
  torch::Tensor loss = cross_entropy_label_smooth(logits, longs({0, 1}), 0.1);
  const double expected = (std::log(3.0) + 32.0 / 30.0 * std::log(2.0)) / 2.0;
  EXPECT_NEAR(loss.item<double>(), expected, 1e-6);
  EXPECT_NEAR(expected, 0.9189847, 1e-6);
  loss.backward();
  // d loss / d logits = (softmax - q) / N; row 0 has target 0, so q = [28/30, 1/30, 1/30] and
  // entry (0,0) = (1/3 - 28/30) / 2 = (10/30 - 28/30) / 2 = -0.3.
  EXPECT_NEAR(logits.grad()[0][0].item<double>(), -0.3, 1e-6);
  expect_finite_nonzero_grad(logits);
}

TEST(LossLabelSmooth, EpsilonZeroIsPlainCrossEntropy) {
  torch::manual_seed(1);
  torch::Tensor logits = torch::randn({5, 7});
  torch::Tensor targets = longs({0, 3, 6, 2, 2});
  EXPECT_NEAR(cross_entropy_label_smooth(logits, targets, 0.0).item<double>(),
              torch::nn::functional::cross_entropy(logits, targets).item<double>(), 1e-6);
}

TEST(LossLabelSmooth, RejectsOutOfRangeTargets) {
  expect_error_containing(
      [] {
        cross_entropy_label_smooth(torch::zeros({2, 3}), longs({0, 3}));
      },
      "outside [0, 3)");
  expect_error_containing(
      [] {
        cross_entropy_label_smooth(torch::zeros({2, 3}), longs({0}));
      },
      "labels must be a 1-D tensor of 2");
}

TEST(LossTriplet, HardestPairsAndValueByHand) {
  // 1-D points x = [0, 3, 2, 4] with labels [0, 1, 0, 1], margin 0.3:
  //   anchor 0 (x=0, id 0): positive |0-2| = 2, negatives |0-3| = 3, |0-4| = 4 -> 3;
  //                         relu(2 - 3 + 0.3) = 0
  //   anchor 1 (x=3, id 1): positive |3-4| = 1, negatives |3-0| = 3, |3-2| = 1 -> 1; 0.3
  //   anchor 2 (x=2, id 0): positive 2,          negatives |2-3| = 1, |2-4| = 2 -> 1; 1.3
  //   anchor 3 (x=4, id 1): positive 1,          negatives |4-0| = 4, |4-2| = 2 -> 2; 0
  // loss = (0 + 0.3 + 1.3 + 0) / 4 = 0.4
  torch::Tensor x = points({0, 3, 2, 4});
  TripletResult r = batch_hard_triplet(x, longs({0, 1, 0, 1}), 0.3);
  EXPECT_NEAR(r.loss.item<double>(), 0.4, 1e-5);
  EXPECT_TRUE(
      torch::allclose(r.hardest_positive, torch::tensor({2.0f, 1.0f, 2.0f, 1.0f}), 1e-5, 1e-5));
  EXPECT_TRUE(
      torch::allclose(r.hardest_negative, torch::tensor({3.0f, 1.0f, 1.0f, 2.0f}), 1e-5, 1e-5));
  r.loss.backward();
  // Active terms, each over 4: anchor 1: d(1,3) - d(1,2) = (x3 - x1) - (x1 - x2) and
  // anchor 2: d(2,0) - d(2,1) = (x2 - x0) - (x1 - x2). So d/dx0 = -1/4, d/dx1 = (-2 - 1)/4,
  // d/dx2 = (1 + 2)/4, d/dx3 = 1/4.
  EXPECT_TRUE(torch::allclose(x.grad().view({-1}), torch::tensor({-0.25f, -0.75f, 0.75f, 0.25f}),
                              1e-4, 1e-5))
      << x.grad();
}

TEST(LossTriplet, TwoDimensionalPoints) {
  // (0,0) and (3,4) are identity 0 (distance 5); (0,1) and (6,9) identity 1 (distance 10).
  // Margin 1:
  //   a0 (0,0): pos 5,  neg min(|(0,1)| = 1, |(6,9)| = sqrt117)     = 1       -> 5
  //   a1 (3,4): pos 5,  neg min(|(3,3)| = sqrt18, |(3,5)| = sqrt34) = sqrt18  -> 6 - sqrt18
  //   a2 (0,1): pos 10, neg min(1, sqrt18)                           = 1       -> 10
  //   a3 (6,9): pos 10, neg min(sqrt117, sqrt34)                     = sqrt34  -> 11 - sqrt34
  // loss = (5 + 6 - 4.2426 + 10 + 11 - 5.8310) / 4 = 5.4816
  torch::Tensor x = torch::tensor({0.0f, 0.0f, 3.0f, 4.0f, 0.0f, 1.0f, 6.0f, 9.0f}).view({4, 2});
  TripletResult r = batch_hard_triplet(x, longs({0, 0, 1, 1}), 1.0);
  EXPECT_NEAR(r.loss.item<double>(), (32 - std::sqrt(18.0) - std::sqrt(34.0)) / 4.0, 1e-5);
  EXPECT_TRUE(
      torch::allclose(r.hardest_positive, torch::tensor({5.0f, 5.0f, 10.0f, 10.0f}), 1e-5, 1e-5));
}

TEST(LossTriplet, RejectsSingletonIdentityAndSingleIdentity) {
  expect_error_containing(
      [] {
        batch_hard_triplet(points({0, 1, 2}), longs({0, 0, 1}));
      },
      "batch-hard triplet needs K >= 2");
  expect_error_containing(
      [] {
        batch_hard_triplet(points({0, 1}), longs({4, 4}));
      },
      "single identity");
}

TEST(LossCenter, ValueAndGradientByHand) {
  // Centres c0 = (0,0), c1 = (1,1). Features with labels:
  //   f0 = (1, 2), y 0: |(1,2)|^2 = 5;  f1 = (1,-1), y 1: |(0,-2)|^2 = 4;
  //   f2 = (0, 0), y 1: |(-1,-1)|^2 = 2.  loss = (5 + 4 + 2) / 3 = 11/3.
  // d/dc0 = -2 (f0 - c0) / 3 = (-2/3, -4/3); d/dc1 = -2 ((0,-2) + (-1,-1)) / 3 = (2/3, 2).
  CenterLoss center(2, 2);
  {
    torch::NoGradGuard no_grad;
    center->centers.copy_(torch::tensor({0.0f, 0.0f, 1.0f, 1.0f}).view({2, 2}));
  }
  torch::Tensor f =
      torch::tensor({1.0f, 2.0f, 1.0f, -1.0f, 0.0f, 0.0f}).view({3, 2}).set_requires_grad(true);
  torch::Tensor loss = center(f, longs({0, 1, 1}));
  EXPECT_NEAR(loss.item<double>(), 11.0 / 3.0, 1e-5);
  loss.backward();
  EXPECT_TRUE(torch::allclose(center->centers.grad(),
                              torch::tensor({-2.0f / 3, -4.0f / 3, 2.0f / 3, 2.0f}).view({2, 2}),
                              1e-5, 1e-5))
      << center->centers.grad();
  expect_finite_nonzero_grad(f);
  ASSERT_EQ(center->named_parameters().size(), 1u);
  EXPECT_EQ(center->named_parameters().begin()->key(), "centers");
}

TEST(LossCenter, RejectsWrongDimensionAndLabel) {
  CenterLoss center(3, 4);
  expect_error_containing(
      [&] {
        center(torch::zeros({2, 5}), longs({0, 1}));
      },
      "features have dimension 5");
  expect_error_containing([&] { center(torch::zeros({2, 4}), longs({0, 3})); }, "outside [0, 3)");
}

TEST(LossCentroid, SplitConstructionIndices) {
  // Labels [7,3,7,3,7,3]: identity 7 (first seen) owns 0,2,4 and identity 3 owns 1,3,5; K = 3.
  std::vector<CentroidSplit> splits = make_centroid_splits(longs({7, 3, 7, 3, 7, 3}));
  ASSERT_EQ(splits.size(), 3u);
  using V = std::vector<int64_t>;
  using VV = std::vector<std::vector<int64_t>>;
  for (const auto& s : splits) EXPECT_EQ(s.labels, (V{7, 3}));
  EXPECT_EQ(splits[0].query, (V{0, 1}));
  EXPECT_EQ(splits[0].members, (VV{{2, 4}, {3, 5}}));
  EXPECT_EQ(splits[1].query, (V{2, 3}));
  EXPECT_EQ(splits[1].members, (VV{{0, 4}, {1, 5}}));
  EXPECT_EQ(splits[2].query, (V{4, 5}));
  EXPECT_EQ(splits[2].members, (VV{{0, 2}, {1, 3}}));
}

TEST(LossCentroid, ValueAndGradientByHand) {
  // Same labels; 1-D features x = [0, 10, 2, 11, 4, 3] (id 7: 0, 2, 4; id 3: 10, 11, 3).
  // split 0: q7 = 0,  c7 = (2+4)/2 = 3;   q3 = 10, c3 = (11+3)/2 = 7
  //          q7: pos 3, neg |0-7| = 7 -> 0;   q3: pos 3, neg |10-3| = 7 -> 0
  // split 1: q7 = 2,  c7 = (0+4)/2 = 2;   q3 = 11, c3 = (10+3)/2 = 6.5
  //          q7: pos 0, neg 4.5 -> 0;         q3: pos 4.5, neg |11-2| = 9 -> 0
  // split 2: q7 = 4,  c7 = (0+2)/2 = 1;   q3 = 3,  c3 = (10+11)/2 = 10.5
  //          q7: pos 3, neg 6.5 -> 0;         q3: pos 7.5, neg |3-1| = 2 -> 7.5 - 2 + 0.3 = 5.8
  // loss = 5.8 / 6 = 0.9666667.
  torch::Tensor x = points({0, 10, 2, 11, 4, 3});
  torch::Tensor loss = centroid_triplet_loss(x, longs({7, 3, 7, 3, 7, 3}), 0.3);
  EXPECT_NEAR(loss.item<double>(), 5.8 / 6.0, 1e-5);
  loss.backward();
  // Only q3 of split 2 is active: (c3 - x5) - (x5 - c7) + 0.3 over 6, with c3 = (x1+x3)/2 and
  // c7 = (x0+x2)/2: d/dx5 = -2/6, d/dx1 = d/dx3 = 0.5/6, d/dx0 = d/dx2 = 0.5/6, d/dx4 = 0.
  const float a = 0.5f / 6;
  EXPECT_TRUE(torch::allclose(x.grad().view({-1}), torch::tensor({a, a, a, a, 0.0f, -2.0f / 6}),
                              1e-4, 1e-5))
      << x.grad();
}

TEST(LossCentroid, RejectsUnevenOrTooSmallGroups) {
  expect_error_containing(
      [] {
        make_centroid_splits(longs({0, 0, 1, 1, 1}));
      },
      "identity 1 has 3 images but identity 0 has 2");
  expect_error_containing([] { make_centroid_splits(longs({0, 1, 2})); }, "K >= 2");
  expect_error_containing([] { make_centroid_splits(longs({5, 5, 5})); }, "P >= 2");
}

TEST(LossCentroid, MatchesLoopOverSplitsOnRandomBatch) {
  // Independent reference: explicit loops over splits, queries and centroids with exact
  // distances (no |a|^2 + |b|^2 - 2ab expansion), on a shuffled P=3, K=4 batch.
  torch::manual_seed(3);
  torch::Tensor labels = longs({2, 0, 1, 1, 0, 2, 2, 1, 0, 0, 1, 2});
  torch::Tensor f = torch::randn({12, 5});
  const double margin = 0.3;
  double sum = 0;
  int count = 0;
  for (const auto& split : make_centroid_splits(labels)) {
    std::vector<torch::Tensor> centroids;
    for (const auto& m : split.members) centroids.push_back(f.index_select(0, longs(m)).mean(0));
    for (size_t i = 0; i < split.query.size(); ++i) {
      torch::Tensor q = f[split.query[i]];
      double pos = 0, neg = 1e30;
      for (size_t j = 0; j < centroids.size(); ++j) {
        const double dist = (q - centroids[j]).norm().item<double>();
        if (i == j)
          pos = dist;
        else
          neg = std::min(neg, dist);
      }
      sum += std::max(0.0, pos - neg + margin);
      ++count;
    }
  }
  EXPECT_EQ(count, 12);
  EXPECT_NEAR(centroid_triplet_loss(f, labels, margin).item<double>(), sum / count, 1e-4);
}

TEST(LossCombined, SumsEnabledPartsWithWeights) {
  torch::manual_seed(5);
  ReidOutput out;
  out.global_feat = torch::randn({8, 6}, torch::requires_grad());
  out.bn_feat = out.global_feat * 2;
  out.logits = torch::randn({8, 4}, torch::requires_grad());
  torch::Tensor labels = longs({0, 1, 2, 3, 0, 1, 2, 3});
  CenterLoss center(4, 6);
  LossWeights w;
  w.id = 0.5;
  w.triplet = 2.0;
  w.centroid = 3.0;
  LossParts parts = combined_loss(out, labels, w, &center, 0.1, 0.3);
  const double id = cross_entropy_label_smooth(out.logits, labels, 0.1).item<double>();
  const double tri = batch_hard_triplet(out.global_feat, labels, 0.3).loss.item<double>();
  const double cen = center(out.global_feat, labels).item<double>();
  const double ctl = centroid_triplet_loss(out.global_feat, labels, 0.3).item<double>();
  EXPECT_NEAR(parts.id, id, 1e-6);
  EXPECT_NEAR(parts.triplet, tri, 1e-6);
  EXPECT_NEAR(parts.center, cen, 1e-4);
  EXPECT_NEAR(parts.centroid, ctl, 1e-6);
  EXPECT_NEAR(parts.total.item<double>(), 0.5 * id + 2 * tri + 0.0005 * cen + 3 * ctl, 1e-4);
  parts.total.backward();
  expect_finite_nonzero_grad(out.global_feat);
  expect_finite_nonzero_grad(out.logits);
  expect_finite_nonzero_grad(center->centers);

  LossWeights only_triplet;
  only_triplet.use_id = only_triplet.use_center = only_triplet.use_centroid = false;
  LossParts t = combined_loss(out, labels, only_triplet, nullptr, 0.1, 0.3);
  EXPECT_NEAR(t.total.item<double>(), tri, 1e-6);
  EXPECT_EQ(t.id, 0.0);
  EXPECT_EQ(t.center, 0.0);
}

TEST(LossCombined, RejectsMissingInputs) {
  ReidOutput out;
  out.global_feat = torch::randn({4, 3});
  torch::Tensor labels = longs({0, 0, 1, 1});
  LossWeights w;
  expect_error_containing([&] { combined_loss(out, labels, w, nullptr, 0.1, 0.3); },
                          "no classifier");
  w.use_id = false;
  expect_error_containing([&] { combined_loss(out, labels, w, nullptr, 0.1, 0.3); },
                          "no CenterLoss");
  w.use_triplet = w.use_center = w.use_centroid = false;
  expect_error_containing([&] { combined_loss(out, labels, w, nullptr, 0.1, 0.3); },
                          "every loss is disabled");
}

}  // namespace
}  // namespace ppreid::reid
