// The identity attack's ranking and ground truth on hand-made inputs.
#include "core/privacy/identity_attack.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "core/reid/evaluation.h"
#include "core/util/error.h"
#include "tests/support/errors.h"
#include "tests/support/tensors.h"

namespace ppreid::privacy {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::matrix;

using testing::error_of;

// A de-identified gallery where two images carry a partner identity (as PIS mixes them):
//   g0: original 1, camera 0, hits {1}
//   g1: original 2, camera 1, hits {2, 1}   (person 2 mixed with person 1)
//   g2: original 1, camera 1, hits {1}
//   g3: original 3, camera 0, hits {3}
//   g4: original 4, camera 0, hits {4, 1}   (person 4 mixed with person 1, camera 0)
std::vector<GalleryTruth> partner_gallery() {
  return {{1, 0, {1}}, {2, 1, {2, 1}}, {1, 1, {1}}, {3, 0, {3}}, {4, 0, {4, 1}}};
}

// One query against partner_gallery(): its outcome computed by hand.
struct QueryCase {
  std::string name;
  int pid, camid;
  std::vector<double> distances;
  double ap;
  int first_hit;  // 0-based position of the first hit in the filtered ranking
};

void PrintTo(const QueryCase& c, std::ostream* os) { *os << c.name; }

class SingleQuery : public ::testing::TestWithParam<QueryCase> {};

TEST_P(SingleQuery, ApAndFirstHitByHand) {
  const QueryCase& c = GetParam();
  IdentityAttackResult r =
      evaluate_identity_attack(matrix({c.distances}), {c.pid}, {c.camid}, partner_gallery());
  EXPECT_EQ(r.valid_queries, 1);
  EXPECT_EQ(r.total_queries, 1);
  EXPECT_DOUBLE_EQ(r.map, c.ap);
  EXPECT_EQ(r.rank1, c.first_hit == 0 ? 1.0 : 0.0);
  EXPECT_EQ(r.rank5, c.first_hit < 5 ? 1.0 : 0.0);
  ASSERT_EQ(r.cmc.size(), 5u);  // truncated to the gallery size
  for (int k = 0; k < 5; ++k) EXPECT_EQ(r.cmc[k], k >= c.first_hit ? 1.0 : 0.0) << k;
}

INSTANTIATE_TEST_SUITE_P(
    PartnerGallery, SingleQuery,
    ::testing::Values(
        // Person 1 from camera 0: g0 (its own de-identified copy, camera 0) is removed; the rest
        // ranks g2* g3 g1* g4*, where g1 and g4 are hits through their partner pid 1 and g4 is
        // kept although it is in the query's camera (its original pid is 4).
        // AP = (1/1 + 2/3 + 3/4) / 3 = 29/36.
        QueryCase{"PartnerHitsAndRemoval", 1, 0, {0.1, 0.4, 0.2, 0.3, 0.5}, 29.0 / 36, 0},
        // Person 1 from camera 1: now g2 is removed (although it is the closest) and g0
        // (camera 0) is a hit. Ranking g4* g0* g3 g1*: AP = (1/1 + 2/2 + 3/4) / 3 = 11/12.
        QueryCase{"RemovalNeedsPidAndCamera", 1, 1, {0.3, 0.35, 0.0, 0.32, 0.1}, 11.0 / 12, 0},
        // Person 2: all distances tie, so the order is the gallery order g0 g1* g2 g3 g4 (nothing
        // removed: g1 is camera 1). AP = 1/2.
        QueryCase{"TiesByGalleryIndex", 2, 0, {1, 1, 1, 1, 1}, 0.5, 1},
        // Person 4 from camera 1 matches only g4 (camera 0). g2 is strictly closest, then the
        // tie at 0.3 in index order: g2 g0 g1 g3 g4* -> AP = 1/5.
        QueryCase{"TieWithTheHitLast", 4, 1, {0.3, 0.3, 0.1, 0.3, 0.3}, 0.2, 4}),
    [](const auto& info) { return info.param.name; });

TEST(IdentityAttack, AggregatesQueriesAndSkipsThoseWithoutHits) {
  // The four cases above plus person 3 from camera 0, whose only image g3 is removed -> skipped.
  torch::Tensor d = matrix({{0.1, 0.4, 0.2, 0.3, 0.5},
                            {0.3, 0.35, 0.0, 0.32, 0.1},
                            {0.9, 0.9, 0.9, 0.1, 0.9},
                            {1, 1, 1, 1, 1},
                            {0.3, 0.3, 0.1, 0.3, 0.3}});
  IdentityAttackResult r =
      evaluate_identity_attack(d, {1, 1, 3, 2, 4}, {0, 1, 0, 0, 1}, partner_gallery());
  EXPECT_EQ(r.total_queries, 5);
  EXPECT_EQ(r.valid_queries, 4);
  EXPECT_EQ(r.target_ids, 4);
  EXPECT_EQ(r.gallery_images, 5);
  EXPECT_DOUBLE_EQ(r.map, (29.0 / 36 + 11.0 / 12 + 0.5 + 0.2) / 4);
  EXPECT_DOUBLE_EQ(r.rank1, 0.5);
  EXPECT_DOUBLE_EQ(r.rank5, 1.0);
  EXPECT_THAT(r.cmc, ElementsAre(0.5, 0.75, 0.75, 0.75, 1.0));
  // max_rank shortens the CMC only.
  IdentityAttackResult short_cmc =
      evaluate_identity_attack(d, {1, 1, 3, 2, 4}, {0, 1, 0, 0, 1}, partner_gallery(), 2);
  EXPECT_THAT(short_cmc.cmc, ElementsAre(0.5, 0.75));
  EXPECT_EQ(short_cmc.map, r.map);
  EXPECT_EQ(short_cmc.rank5, r.rank5);

  nlohmann::json j = r.to_json();
  for (const char* key : {"mAP", "rank1", "rank5", "cmc"}) EXPECT_TRUE(j.contains(key)) << key;
  for (const char* key : {"valid_queries", "total_queries", "target_ids", "gallery_images"})
    EXPECT_TRUE(j.at(key).is_number_integer()) << key;
  EXPECT_EQ(j["valid_queries"], 4);
}

TEST(IdentityAttack, WithoutPartnersOnlyTheOriginalPidHits) {
  // partner_gallery() with hit sets {original pid}: for person 1 from camera 0 only g2 is left.
  std::vector<GalleryTruth> plain = partner_gallery();
  for (GalleryTruth& t : plain) t.hit_pids = {t.original_pid};
  // First case of SingleQuery: ranking g2* g3 g1 g4 -> AP 1 (29/36 with partners).
  IdentityAttackResult r =
      evaluate_identity_attack(matrix({{0.1, 0.4, 0.2, 0.3, 0.5}}), {1}, {0}, plain);
  EXPECT_DOUBLE_EQ(r.map, 1.0);
  // The partner images g4 and g1 closest: ranking g4 g1 g2* g3 -> AP 1/3 (with partners 1).
  IdentityAttackResult r2 =
      evaluate_identity_attack(matrix({{0.1, 0.05, 0.2, 0.3, 0.01}}), {1}, {0}, plain);
  EXPECT_DOUBLE_EQ(r2.map, 1.0 / 3);
  IdentityAttackResult r3 =
      evaluate_identity_attack(matrix({{0.1, 0.05, 0.2, 0.3, 0.01}}), {1}, {0}, partner_gallery());
  EXPECT_DOUBLE_EQ(r3.map, 1.0);
}

TEST(IdentityAttack, EqualsMarketWhenHitSetsAreTheOriginalPids) {
  // Random pids, cameras and integer distances (many ties): every field must be bit-identical.
  std::mt19937 rng(11);
  const int num_q = 30, num_g = 120;
  std::uniform_int_distribution<int> pid(0, 20), cam(0, 5), dist(0, 15);
  std::vector<int> q_pids, q_camids, g_pids, g_camids;
  std::vector<GalleryTruth> truth;
  for (int i = 0; i < num_q; ++i) {
    q_pids.push_back(1 + pid(rng) % 20);
    q_camids.push_back(cam(rng));
  }
  for (int j = 0; j < num_g; ++j) {
    g_pids.push_back(pid(rng));
    g_camids.push_back(cam(rng));
    truth.push_back({g_pids.back(), g_camids.back(), {g_pids.back()}});
  }
  torch::Tensor d = torch::empty({num_q, num_g}, torch::kFloat64);
  auto acc = d.accessor<double, 2>();
  for (int i = 0; i < num_q; ++i)
    for (int j = 0; j < num_g; ++j) acc[i][j] = dist(rng);
  for (torch::Tensor dm : {d, d.to(torch::kFloat32)}) {
    reid::RetrievalMetrics m = reid::evaluate_market(dm, q_pids, g_pids, q_camids, g_camids, 20);
    IdentityAttackResult a = evaluate_identity_attack(dm, q_pids, q_camids, truth, 20);
    EXPECT_EQ(a.map, m.map);
    EXPECT_EQ(a.rank1, m.rank1);
    EXPECT_EQ(a.rank5, m.rank5);
    EXPECT_EQ(a.cmc, m.cmc);
    EXPECT_EQ(a.valid_queries, m.valid_queries);
    EXPECT_EQ(a.total_queries, m.total_queries);
    EXPECT_GT(m.valid_queries, 20);  // the case exercises the ranking, not the skipping
  }
}

TEST(IdentityAttack, RejectsBadInputs) {
  torch::Tensor d = matrix({{0.1, 0.2}});
  std::vector<GalleryTruth> g = {{1, 0, {1}}, {2, 1, {2}}};
  EXPECT_THAT(error_of([&] {
                evaluate_identity_attack(d, {1, 2}, {0}, g);
              }),
              HasSubstr("q_pids has 2 entries but the distance matrix has 1 rows"));
  EXPECT_THAT(error_of([&] { evaluate_identity_attack(d, {1}, {0}, {g[0]}); }),
              HasSubstr("gallery truth has 1 entries but the distance matrix has 2 columns"));
  EXPECT_THAT(error_of([&] { evaluate_identity_attack(d, {1}, {0}, g, 0); }),
              HasSubstr("max_rank must be at least 1"));
  EXPECT_THAT(error_of([&] {
                evaluate_identity_attack(matrix({{0.1, std::nan("")}}), {1}, {0}, g);
              }),
              HasSubstr("contains NaN"));
  // The only image of person 1 is its own camera-0 copy: nothing left to find.
  EXPECT_THAT(error_of([&] { evaluate_identity_attack(d, {1}, {0}, g); }),
              HasSubstr("no attack query has a hit in the de-identified gallery"));
}

// ---------------------------------------------------------------------------------------------
// Ground truth from datasets

data::ImageRecord record(const std::string& name, int pid, int camid) {
  return {"bounding_box_train/" + name, pid, camid, -1};
}

TEST(IdentityAttackData, OneQueryPerIdentityAndCameraFirstInDatasetOrder) {
  data::Dataset raw;
  raw.train = {record("0001_c1s1_000001_00.jpg", 1, 0), record("0001_c1s1_000002_00.jpg", 1, 0),
               record("0001_c3s1_000003_00.jpg", 1, 2), record("0000_c1s1_000004_00.jpg", 0, 0),
               record("0005_c3s1_000005_00.jpg", 5, 2), record("0005_c1s1_000006_00.jpg", 5, 0),
               record("0005_c3s1_000007_00.jpg", 5, 2)};
  std::vector<std::string> paths;
  for (const data::ImageRecord& r : select_attack_queries(raw)) paths.push_back(r.path);
  EXPECT_THAT(paths, ElementsAre("bounding_box_train/0001_c1s1_000001_00.jpg",
                                 "bounding_box_train/0001_c3s1_000003_00.jpg",
                                 "bounding_box_train/0005_c3s1_000005_00.jpg",
                                 "bounding_box_train/0005_c1s1_000006_00.jpg"));
}

TEST(IdentityAttackData, GalleryTruthThroughAMappingTable) {
  data::Dataset deid;
  deid.train = {record("0101_c1s1_000001_00.jpg", 101, 0),
                record("0102_c2s1_000002_00.jpg", 102, 1)};
  HitPidsFn table = hit_pids_from_table({{101, {1, 7}}, {102, {2}}}, "key.bin");
  std::vector<GalleryTruth> t = attack_gallery_truth(deid, table);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].original_pid, 1);
  EXPECT_EQ(t[0].camid, 0);
  EXPECT_THAT(t[0].hit_pids, ElementsAre(1, 7));
  EXPECT_EQ(t[1].original_pid, 2);
  EXPECT_EQ(t[1].camid, 1);
  EXPECT_THAT(t[1].hit_pids, ElementsAre(2));
  // Without a mapping every image stands for its file-name pid.
  std::vector<GalleryTruth> same = attack_gallery_truth(deid, same_pid);
  EXPECT_EQ(same[1].original_pid, 102);
  EXPECT_THAT(same[1].hit_pids, ElementsAre(102));

  EXPECT_THAT(error_of([&] { table(103); }), HasSubstr("de-identified pid 103 is not in key.bin"));
  EXPECT_THAT(error_of([&] {
                hit_pids_from_table({{101, {}}}, "key.bin");
              }),
              HasSubstr("key.bin: de-identified pid 101 maps to no identity"));
  EXPECT_THAT(error_of([&] { attack_gallery_truth(deid, [](int) { return std::vector<int>{}; }); }),
              HasSubstr("gives no pid for de-identified pid 101"));
}

}  // namespace
}  // namespace ppreid::privacy
