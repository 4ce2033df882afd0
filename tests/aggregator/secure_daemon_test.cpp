// The aggregator daemon with secure aggregation on, over real CURVE sockets, driven by scripted
// sites that run the site side of the protocol (secagg::SiteSession) and drop out on cue.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <mutex>

#include "aggregator/aggregator.h"
#include "protocols/secagg/quantize.h"
#include "protocols/secagg/site_session.h"
#include "protocols/torch_wire.h"
#include "tests/aggregator/daemon_fixture.h"

namespace ppreid::agg::daemon_tests {
namespace {

using ::testing::HasSubstr;

std::mutex torch_seed_mutex;  // perturbed() seeds LibTorch's global generator

// The stage a scripted site stops at: it closes its connection instead of sending that stage's
// message (1 = keys, 2 = shares, 3 = masked update, 4 = unmask shares); 0 = never.
struct SecureScript {
  std::string id;
  std::uint64_t samples = 100;
  std::uint64_t seed = 1;
  int drop_at = 0;
};

class SecureDaemonTest : public DaemonTest {
 protected:
  SecureDaemonTest() {
    for (const char* site : {"s4", "s5"}) {
      proto::write_keypair(dir_ / "keys" / site);
      fs::copy_file(dir_ / "keys" / (std::string(site) + ".pub"),
                    dir_ / "keys" / "allow" / (std::string(site) + ".pub"));
    }
  }

  static std::string secure_yaml(const std::string& extra = "") {
    return "secure_aggregation: {enabled: true, stage_timeout: 3" + extra + "}\n";
  }

  // Runs every script on its own thread (the stages need all sites at once) and returns what
  // each site would have sent in the clear: global + its perturbation.
  std::map<std::string, NamedTensors> run_sites(const std::vector<SecureScript>& scripts) {
    std::vector<std::unique_ptr<ScriptedSite>> sites;
    for (const auto& s : scripts) sites.push_back(site(s.id, "", s.samples));
    std::map<std::string, NamedTensors> sent;
    std::mutex sent_mutex;
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < scripts.size(); ++i)
      threads.emplace_back([&, i] {
        const SecureScript& s = scripts[i];
        ScriptedSite& me = *sites[i];
        auto task = me.wait_for(proto::MessageType::kTask);
        if (!task) return ADD_FAILURE() << s.id << " got no Task";
        const auto& t = std::get<proto::Task>(task->envelope.payload);
        if (!t.secure_aggregation) return ADD_FAILURE() << s.id << ": Task without secure_aggregation";
        const std::uint64_t round = task->envelope.round;
        NamedTensors global = proto::from_wire(t.weights);
        NamedTensors mine;
        {
          std::lock_guard<std::mutex> lock(torch_seed_mutex);
          mine = perturbed(global, s.seed, 0.05, 2);
        }
        std::vector<float> delta;
        for (std::size_t k = 0; k < global.size(); ++k) {
          torch::Tensor d = (mine[k].second.to(torch::kFloat64) - global[k].second.to(torch::kFloat64))
                                .to(torch::kFloat32).contiguous().flatten();
          delta.insert(delta.end(), d.data_ptr<float>(), d.data_ptr<float>() + d.numel());
        }
        {
          std::lock_guard<std::mutex> lock(sent_mutex);
          sent[s.id] = mine;
        }
        secagg::SiteSession session({"fed-test", round}, s.id, *t.secure_aggregation,
                                    t.secure_aggregation->sites);
        if (s.drop_at == 1) return me.close();
        me.client().send(round, session.keys());
        auto keys = me.wait_for(proto::MessageType::kSecAggKeyList);
        if (!keys) return ADD_FAILURE() << s.id << " got no KeyList";
        auto shares = session.share_keys(std::get<proto::SecAggKeyList>(keys->envelope.payload));
        if (s.drop_at == 2) return me.close();
        me.client().send(round, shares);
        auto list = me.wait_for(proto::MessageType::kSecAggShareList);
        if (!list) return ADD_FAILURE() << s.id << " got no ShareList";
        auto masked = session.mask(std::get<proto::SecAggShareList>(list->envelope.payload), delta,
                                   static_cast<double>(s.samples), 1.5);
        if (s.drop_at == 3) return me.close();
        me.client().send(round, masked);
        auto request = me.wait_for(proto::MessageType::kUnmaskRequest);
        if (!request) return ADD_FAILURE() << s.id << " got no UnmaskRequest";
        auto reveal = session.unmask(std::get<proto::UnmaskRequest>(request->envelope.payload));
        if (s.drop_at == 4) return me.close();
        me.client().send(round, reveal);
        me.wait_for(proto::MessageType::kBye, 10'000ms);
      });
    for (auto& t : threads) t.join();
    return sent;
  }

  // The float64 weighted mean of the survivors' weights, with Flower's quantized weights.
  static NamedTensors survivors_mean(const std::map<std::string, NamedTensors>& sent,
                                     const std::vector<SecureScript>& scripts,
                                     const secagg::Params& params, const std::set<std::string>& survivors) {
    NamedTensors out;
    double total = 0;
    for (const auto& s : scripts)
      if (survivors.count(s.id)) total += static_cast<double>(secagg::quantized_weight(s.samples, params));
    const NamedTensors& first = sent.begin()->second;
    for (std::size_t k = 0; k < first.size(); ++k) {
      torch::Tensor sum = torch::zeros_like(first[k].second, torch::kFloat64);
      for (const auto& s : scripts)
        if (survivors.count(s.id))
          sum += sent.at(s.id)[k].second.to(torch::kFloat64) *
                 (static_cast<double>(secagg::quantized_weight(s.samples, params)) / total);
      out.emplace_back(first[k].first, sum);
    }
    return out;
  }

  static double max_float_difference(const NamedTensors& a, const NamedTensors& b) {
    double worst = 0;
    for (std::size_t k = 0; k < a.size(); ++k)
      if (a[k].second.is_floating_point())
        worst = std::max(worst, (a[k].second.to(torch::kFloat64) - b[k].second).abs().max().item<double>());
    return worst;
  }
};

TEST_F(SecureDaemonTest, TheAggregatorLearnsTheWeightedMeanOfThreeSites) {
  start(yaml(1, 3, 3, secure_yaml()));
  const std::vector<SecureScript> scripts = {{"s1", 100, 1}, {"s2", 300, 2}, {"s3", 350, 3}};
  const auto sent = run_sites(scripts);
  join();
  ASSERT_EQ(failure_, "");
  ASSERT_EQ(aggregator_->round(), 1);
  secagg::Params params;
  params.max_weight = 350;  // auto: the largest count declared in a Hello
  const NamedTensors expected = survivors_mean(sent, scripts, params, {"s1", "s2", "s3"});
  // Each site's word errs by under one quantization step; the mean divides three by the weights.
  const double weight = (100.0 + 300.0 + 350.0) / 350.0;
  const double bound = secagg::quantization_step(params) * 3 / weight;
  const double diff = max_float_difference(aggregator_->global(), expected);
  EXPECT_LT(diff, bound);
  EXPECT_GT(diff, 0.0);
  // Counters take the rounded mean increase: every site counted 2 more batches.
  const NamedTensors& global = aggregator_->global();
  for (std::size_t k = 0; k < global.size(); ++k)
    if (!global[k].second.is_floating_point())
      EXPECT_TRUE(torch::equal(global[k].second, sent.at("s1")[k].second)) << global[k].first;
  auto lines = metrics_lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["outcome"], "completed");
  const auto& sa = lines[0]["secure_aggregation"];
  EXPECT_EQ(sa["survivors"], nlohmann::json({"s1", "s2", "s3"}));
  EXPECT_EQ(sa["threshold"], 2);
  EXPECT_EQ(sa["modulus_bits"], 32);
  EXPECT_NEAR(sa["samples"].get<double>(), 750.0, 1e-3);
  EXPECT_NEAR(lines[0]["train_loss"].get<double>(), 1.5, 1e-4);
}

class SecureDropoutTest : public SecureDaemonTest, public ::testing::WithParamInterface<int> {};

TEST_P(SecureDropoutTest, OneSiteDroppingAtAnyStageLeavesTheRoundToTheOthers) {
  const int stage = GetParam();
  start(yaml(1, 4, 2, secure_yaml()));
  const std::vector<SecureScript> scripts = {
      {"s1", 100, 1}, {"s2", 200, 2}, {"s3", 300, 3, stage}, {"s4", 400, 4}};
  const auto sent = run_sites(scripts);
  join();
  ASSERT_EQ(failure_, "");
  ASSERT_EQ(aggregator_->round(), 1);
  // A site that dropped after its masked update still counts: its self mask is rebuilt.
  std::set<std::string> survivors = {"s1", "s2", "s4"};
  if (stage == 4) survivors.insert("s3");
  secagg::Params params;
  params.max_weight = 400;
  const NamedTensors expected = survivors_mean(sent, scripts, params, survivors);
  double weight = 0;
  for (const auto& s : scripts)
    if (survivors.count(s.id)) weight += s.samples / 400.0;
  EXPECT_LT(max_float_difference(aggregator_->global(), expected),
            secagg::quantization_step(params) * survivors.size() / weight);
  const auto sa = metrics_lines().back()["secure_aggregation"];
  EXPECT_EQ(sa["survivors"].size(), survivors.size());
  EXPECT_EQ(sa["threshold"], stage == 1 ? 2 : 3);  // the majority of those who sent keys
  if (stage == 3) {
    EXPECT_EQ(sa["dropped"], nlohmann::json({"s3"}));
  }
}

INSTANTIATE_TEST_SUITE_P(Stages, SecureDropoutTest, ::testing::Values(1, 2, 3, 4));

TEST_F(SecureDaemonTest, BelowTheThresholdTheRoundIsRetriedWithTheReason) {
  std::string text = yaml(1, 3, 2, secure_yaml());
  text.replace(text.find("site_timeout: 1.5}"), 18, "site_timeout: 1.5, max_attempts: 1}");
  start(text);
  // t = 2 of 3; two sites leave after their masked updates: one holder of each seed answers.
  run_sites({{"s1", 100, 1}, {"s2", 100, 2, 4}, {"s3", 100, 3, 4}});
  join();
  EXPECT_THAT(failure_, HasSubstr("failed 1 time"));
  EXPECT_EQ(aggregator_->round(), 0);
  const auto line = metrics_lines().at(0);
  EXPECT_EQ(line["outcome"], "retry");
  EXPECT_THAT(line["secure_aggregation"]["failure"].get<std::string>(),
              HasSubstr("has 1 share(s), threshold 2"));
}

TEST_F(SecureDaemonTest, AClearUpdateIsRefusedInASecureRound) {
  std::string text = yaml(1, 2, 2, secure_yaml());
  text.replace(text.find("site_timeout: 1.5}"), 18, "site_timeout: 1.5, max_attempts: 1}");
  start(text);
  auto s1 = site("s1"), s2 = site("s2");
  s1->answer_task(100, [](const NamedTensors& g) { return perturbed(g, 1, 0.05); });
  EXPECT_THAT(s1->wait_for_error(), HasSubstr("uses secure aggregation: a clear Update is refused"));
  stop();
}

TEST_F(SecureDaemonTest, ConfigRefusesStrategiesThatNeedEachUpdate) {
  for (const char* kind : {"median", "trimmed_mean", "krum", "multi_krum", "bulyan"}) {
    SCOPED_TRACE(kind);
    const std::string text =
        yaml(1, 7, 7, secure_yaml() + "strategy: {name: " + std::string(kind) + "}\n");
    try {
      config(text);
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), HasSubstr("secure_aggregation.enabled"));
      EXPECT_THAT(e.what(), HasSubstr("which secure aggregation hides"));
    }
  }
  EXPECT_NO_THROW(config(yaml(1, 3, 3, secure_yaml() + "strategy: {name: fedadam}\n")));
  try {
    config(yaml(1, 3, 3, "secure_aggregation: {enabled: true, modulus_bits: 48}\n"));
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("modulus_bits"));
  }
}

}  // namespace
}  // namespace ppreid::agg::daemon_tests
