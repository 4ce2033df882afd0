// One secure-aggregation round between in-process SiteSessions and a ServerSession, with sites
// dropping out at every stage: the unmasked result must be the survivors' weighted mean.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>

#include "protocols/secagg/graph.h"
#include "protocols/secagg/quantize.h"
#include "protocols/secagg/server_session.h"
#include "protocols/secagg/site_session.h"

namespace ppreid::secagg {
namespace {

using ::testing::HasSubstr;

// The stage at which a site stops answering: 1 = sends no keys ... 4 = sends no unmask shares.
using Drops = std::map<std::string, int>;

struct Federation {
  RoundContext ctx{"city-fed", 7};
  Params params;
  std::size_t values = 1000;
  ServerOptions options;
  std::vector<std::string> ids;
  std::map<std::string, std::vector<float>> updates;
  std::map<std::string, double> samples, losses;
  std::map<std::string, std::unique_ptr<SiteSession>> sites;
  std::unique_ptr<ServerSession> server;
  // Hooks to misbehave between stages.
  std::function<void(std::map<std::string, proto::SecAggShareList>&)> on_share_lists;
  std::function<void(std::map<std::string, proto::UnmaskRequest>&)> on_unmask_requests;
  std::map<std::string, proto::MaskedUpdate> masked_sent;

  explicit Federation(int n, std::uint64_t seed = 1) {
    params.max_weight = 40 + 10 * (n - 1);  // the largest site's images: its weight is 1
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.f, 0.05f);
    for (int i = 0; i < n; ++i) {
      const std::string id = "site-" + std::string(1, static_cast<char>('a' + i / 10)) +
                             std::to_string(i % 10);
      ids.push_back(id);
      std::vector<float>& u = updates[id];
      for (std::size_t j = 0; j < values; ++j) u.push_back(normal(rng) + 0.01f * (i + 1));
      samples[id] = 40 + 10 * i;
      losses[id] = 2.0 + 0.5 * i;
    }
  }

  SecureSum run(const Drops& drops) {
    auto alive = [&](const std::string& id, int stage) {
      auto it = drops.find(id);
      return it == drops.end() || it->second > stage;
    };
    server = std::make_unique<ServerSession>(ctx, params, std::set<std::string>(ids.begin(), ids.end()),
                                             values, options);
    for (const auto& id : ids) {
      sites[id] = std::make_unique<SiteSession>(ctx, id, params, ids.size());
      if (alive(id, 1)) server->add_keys(id, sites[id]->keys());
    }
    for (auto& [id, list] : server->close_keys())
      if (alive(id, 2)) server->add_shares(id, sites[id]->share_keys(list));
    auto share_lists = server->close_shares();
    if (on_share_lists) on_share_lists(share_lists);
    for (auto& [id, list] : share_lists)
      if (alive(id, 3)) {
        masked_sent[id] = sites[id]->mask(list, updates[id], samples[id], losses[id]);
        server->add_masked(id, masked_sent[id]);
      }
    auto requests = server->close_masked();
    if (on_unmask_requests) on_unmask_requests(requests);
    for (auto& [id, request] : requests)
      if (alive(id, 4)) server->add_unmask(id, sites[id]->unmask(request));
    return server->finish();
  }

  // The survivors' weighted mean in the clear, with Flower's weight quantization.
  std::vector<double> expected(const std::vector<std::string>& survivors, double* loss = nullptr) const {
    std::vector<double> mean(values, 0.0);
    double weights = 0, l = 0;
    for (const auto& id : survivors) {
      const double w = static_cast<double>(quantized_weight(samples.at(id), params));
      weights += w;
      l += w * losses.at(id);
      for (std::size_t j = 0; j < values; ++j) mean[j] += w * updates.at(id)[j];
    }
    for (auto& v : mean) v /= weights;
    if (loss) *loss = l / weights;
    return mean;
  }

  // Each survivor's word errs by less than one step; the mean divides the sum by the weights.
  double tolerance(const SecureSum& sum) const {
    return quantization_step(params) * static_cast<double>(sum.survivors.size()) / sum.weight;
  }

  void expect_mean(const SecureSum& sum) const {
    double loss = 0;
    const std::vector<double> want = expected(sum.survivors, &loss);
    ASSERT_EQ(sum.mean.size(), values);
    double worst = 0;
    for (std::size_t j = 0; j < values; ++j) worst = std::max(worst, std::abs(sum.mean[j] - want[j]));
    EXPECT_LT(worst, tolerance(sum) + 1e-7);  // + float32 rounding of the mean (values < 1)
    EXPECT_GT(worst, 0.0);  // quantized, so not bit-exact: the comparison is not vacuous
    EXPECT_NEAR(sum.mean_loss, loss, tolerance(sum) * kLossScale);
    double samples_sum = 0;
    for (const auto& id : sum.survivors) samples_sum += samples.at(id);
    EXPECT_NEAR(sum.samples, samples_sum, 1e-3);
  }
};

TEST(SecureAggregation, WithoutDropoutsTheSumIsTheWeightedMean) {
  Federation f(5);
  const SecureSum sum = f.run({});
  EXPECT_EQ(sum.survivors, f.ids);
  EXPECT_TRUE(sum.dropped.empty());
  EXPECT_EQ(f.server->threshold(), 3u);  // majority of the complete graph of 5
  f.expect_mean(sum);
}

TEST(SecureAggregation, SixtyFourBitModulusGivesTheSameMean) {
  Federation f(4);
  f.params.modulus_bits = 64;
  f.params.quantization_range = std::uint64_t{1} << 40;
  const SecureSum sum = f.run({});
  f.expect_mean(sum);
  EXPECT_LT(f.tolerance(sum), 1e-10);
}

struct DropCase {
  const char* name;
  int sites;
  Drops drops;
  std::vector<std::string> survivors;
};

class DropoutTest : public ::testing::TestWithParam<DropCase> {};

TEST_P(DropoutTest, RoundCompletesWhileTheThresholdIsReachable) {
  const DropCase& c = GetParam();
  Federation f(c.sites);
  const SecureSum sum = f.run(c.drops);
  EXPECT_EQ(sum.survivors, c.survivors);
  f.expect_mean(sum);
}

INSTANTIATE_TEST_SUITE_P(
    EveryStage, DropoutTest,
    ::testing::Values(
        // 7 sites, complete graph: t = 4 of the key stage's survivors.
        DropCase{"keys", 7, {{"site-a0", 1}, {"site-a1", 1}},
                 {"site-a2", "site-a3", "site-a4", "site-a5", "site-a6"}},
        DropCase{"shares", 7, {{"site-a3", 2}},
                 {"site-a0", "site-a1", "site-a2", "site-a4", "site-a5", "site-a6"}},
        // Dropped after sharing: its pairwise masks are rebuilt from its mask key's shares.
        DropCase{"masked", 7, {{"site-a2", 3}, {"site-a5", 3}},
                 {"site-a0", "site-a1", "site-a3", "site-a4", "site-a6"}},
        // Dropped after its masked update: still a survivor, its seed rebuilt by the others.
        DropCase{"unmask", 7, {{"site-a6", 4}, {"site-a1", 4}},
                 {"site-a0", "site-a1", "site-a2", "site-a3", "site-a4", "site-a5", "site-a6"}},
        DropCase{"every stage", 9,
                 {{"site-a0", 1}, {"site-a1", 2}, {"site-a2", 3}, {"site-a3", 4}},
                 {"site-a3", "site-a4", "site-a5", "site-a6", "site-a7", "site-a8"}}),
    [](const auto& info) {
      std::string n = info.param.name;
      for (char& ch : n)
        if (ch == ' ') ch = '_';
      return n;
    });

TEST(SecureAggregation, KRegularGraphWithThirtyPercentDropouts) {
  Federation f(20);
  f.options.neighbours = 8;  // neighbourhoods of 9, t = 5
  f.options.graph_seed = 42;
  Drops drops;
  for (int i : {1, 4, 8, 13, 17, 19}) drops["site-" + std::string(1, 'a' + i / 10) + std::to_string(i % 10)] = 3;
  const SecureSum sum = f.run(drops);
  EXPECT_EQ(sum.survivors.size(), 14u);
  EXPECT_EQ(sum.dropped.size(), 6u);
  EXPECT_EQ(f.server->threshold(), 5u);
  for (const auto& [id, hood] : f.server->neighbourhoods()) EXPECT_EQ(hood.size(), 9u) << id;
  f.expect_mean(sum);
}

TEST(SecureAggregation, BelowTheThresholdTheRoundFailsWithTheReason) {
  Federation f(5);  // t = 3
  try {
    f.run({{"site-a0", 4}, {"site-a1", 4}, {"site-a2", 4}});  // 2 of 5 return shares
    FAIL() << "finish() unmasked with too few shares";
  } catch (const RoundShortfall& e) {
    EXPECT_THAT(e.what(), HasSubstr("has 2 share(s), threshold 3"));
  }
  Federation g(5);
  try {
    g.run({{"site-a0", 3}, {"site-a1", 3}, {"site-a2", 3}});  // 2 masked updates: too few
    FAIL();
  } catch (const RoundShortfall& e) {
    EXPECT_THAT(e.what(), HasSubstr("surviving holder(s), threshold 3"));
  }
}

TEST(SecureAggregation, ATamperedShareIsDetectedByTheRecipient) {
  Federation f(4);
  f.on_share_lists = [](auto& lists) { lists.at("site-a1").shares.at(0).ciphertext.at(20) ^= 0x40; };
  try {
    f.run({});
    FAIL() << "a tampered share was accepted";
  } catch (const ProtocolError& e) {
    EXPECT_THAT(e.what(), HasSubstr("does not authenticate"));
  }
  // A share re-addressed to another site fails too (the key and associated data name the pair).
  Federation g(4);
  g.on_share_lists = [](auto& lists) {
    lists.at("site-a1").shares.at(1).ciphertext = lists.at("site-a2").shares.at(1).ciphertext;
  };
  EXPECT_THROW(g.run({}), ProtocolError);
}

TEST(SecureAggregation, ASiteNeverRevealsBothSecretsOfOneSite) {
  Federation f(4);
  f.on_unmask_requests = [](auto& requests) {
    auto& r = requests.at("site-a0");
    r.dropped.push_back(r.survivors.back());  // ask for the seed and the key of the same site
  };
  try {
    f.run({});
    FAIL();
  } catch (const ProtocolError& e) {
    EXPECT_THAT(e.what(), HasSubstr("both secrets"));
  }
  // ...nor answers twice (a second request could ask for the other secret).
  Federation g(3);
  g.run({});
  proto::UnmaskRequest again{{"site-a0", "site-a1", "site-a2"}, {}};
  EXPECT_THROW(g.sites.at("site-a0")->unmask(again), ProtocolError);
}

TEST(SecureAggregation, ARebuiltKeyThatDoesNotMatchIsRefused) {
  Federation f(5);
  f.on_unmask_requests = [](auto&) {};
  // site-a4 drops after sharing; corrupt one key share that a survivor returns.
  f.server = nullptr;
  Drops drops = {{"site-a4", 3}};
  auto run = [&] {
    f.server = std::make_unique<ServerSession>(f.ctx, f.params,
                                               std::set<std::string>(f.ids.begin(), f.ids.end()),
                                               f.values, f.options);
    for (const auto& id : f.ids) {
      f.sites[id] = std::make_unique<SiteSession>(f.ctx, id, f.params, f.ids.size());
      f.server->add_keys(id, f.sites[id]->keys());
    }
    for (auto& [id, list] : f.server->close_keys()) f.server->add_shares(id, f.sites[id]->share_keys(list));
    for (auto& [id, list] : f.server->close_shares())
      if (id != "site-a4") f.server->add_masked(id, f.sites[id]->mask(list, f.updates[id], 50, 1));
    for (auto& [id, request] : f.server->close_masked()) {
      proto::UnmaskShares shares = f.sites[id]->unmask(request);
      if (id == "site-a0")
        for (auto& s : shares.shares)
          if (s.kind == proto::SecretKind::kMaskKey) s.share[10] ^= 1;
      f.server->add_unmask(id, shares);
    }
    return f.server->finish();
  };
  EXPECT_THROW(run(), ProtocolError);
}

TEST(SecureAggregation, SitesRefuseUnsafeSettings) {
  Params p;
  p.modulus_bits = 32;
  p.quantization_range = std::uint64_t{1} << 30;  // 5 sites * 2^30 wraps 2^32
  EXPECT_THROW(SiteSession(RoundContext{"f", 1}, "a", p, 5), ProtocolError);
  p.modulus_bits = 16;
  EXPECT_THROW(SiteSession(RoundContext{"f", 1}, "a", p, 2), ProtocolError);
  EXPECT_THAT(neighbourhood_problem(2, 4), HasSubstr("at most half"));
  EXPECT_THAT(neighbourhood_problem(1, 3), HasSubstr("below 2"));
  EXPECT_THAT(neighbourhood_problem(5, 4), HasSubstr("exceeds"));
  EXPECT_EQ(neighbourhood_problem(3, 4), "");
  // A KeyList with a threshold of half the neighbourhood is refused by the site.
  Federation f(4);
  f.options.threshold = 2;
  EXPECT_THROW(f.run({}), RoundShortfall);  // the server itself will not announce it
  SiteSession site(RoundContext{"f", 1}, "a", Params{}, 4);
  proto::SecAggKeyList list;
  list.threshold = 2;
  for (const char* id : {"a", "b", "c", "d"}) {
    proto::SecAggKeys k = std::string(id) == "a" ? site.keys() : SiteSession(RoundContext{"f", 1}, id, Params{}, 4).keys();
    list.neighbours.push_back({id, k.encryption_key, k.mask_key});
  }
  EXPECT_THROW(site.share_keys(list), ProtocolError);
}

// Chi-square over the top byte of 32-bit words: 256 cells, 255 degrees of freedom; the 0.1%
// critical value is 330.5.
double chi_square_top_byte(const std::vector<std::uint8_t>& bytes) {
  std::vector<double> cells(256, 0.0);
  const std::size_t n = bytes.size() / 4;
  for (std::size_t i = 0; i < n; ++i) cells[bytes[4 * i + 3]] += 1;
  const double expected = static_cast<double>(n) / 256;
  double chi = 0;
  for (double c : cells) chi += (c - expected) * (c - expected) / expected;
  return chi;
}

TEST(SecureAggregation, WhatTheAggregatorSeesOfOneSiteIsUniform) {
  Federation f(3);
  f.values = 200000;
  for (auto& [id, u] : f.updates) u.resize(f.values, 0.02f);
  f.run({});
  const std::vector<std::uint8_t>& masked = f.masked_sent.at("site-a1").words.at(0).data;
  EXPECT_LT(chi_square_top_byte(masked), 330.5);
  // The same update quantized but not masked is far from uniform.
  std::vector<std::uint32_t> clear(f.values);
  quantize(f.updates.at("site-a1"), quantized_weight(f.samples.at("site-a1"), f.params), f.params,
           random_secret(), clear);
  std::vector<std::uint8_t> clear_bytes(reinterpret_cast<std::uint8_t*>(clear.data()),
                                        reinterpret_cast<std::uint8_t*>(clear.data() + clear.size()));
  EXPECT_GT(chi_square_top_byte(clear_bytes), 10000.0);
}

TEST(Graph, NeighbourhoodsAreSymmetricAndSized) {
  std::vector<std::string> ids;
  for (int i = 0; i < 50; ++i) ids.push_back("s" + std::to_string(i));
  const auto hoods = neighbourhoods(ids, 10, 7);
  for (const auto& [id, hood] : hoods) {
    EXPECT_EQ(hood.size(), 11u);
    EXPECT_TRUE(std::binary_search(hood.begin(), hood.end(), id));
    for (const auto& n : hood) {
      const auto& back = hoods.at(n);
      EXPECT_TRUE(std::binary_search(back.begin(), back.end(), id)) << id << " - " << n;
    }
  }
  EXPECT_EQ(neighbourhoods({"a", "b", "c"}, 10, 1).at("a").size(), 3u);  // complete when k >= n-1
  EXPECT_EQ(neighbours_for(10, 0.3, 16), 0u);                           // small: complete
  const std::size_t k = neighbours_for(200, 0.3, 16);
  EXPECT_GE(k, 16u);  // 2 ceil(log2 200) = 16
  EXPECT_EQ(k % 2, 0u);
}

}  // namespace
}  // namespace ppreid::secagg
