// The aggregator daemon over real CURVE sockets on loopback, driven by scripted sites.
#include "aggregator/aggregator.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "aggregator/state_store.h"
#include "tests/aggregator/daemon_fixture.h"
#include "tests/protocols/protocol_test_util.h"
#include "core/util/atomic_file.h"
#include "tests/support/errors.h"
#include "tests/support/run_cli.h"

namespace ppreid::agg::daemon_tests {
namespace {

using ::testing::HasSubstr;

// The weighted mean every float tensor should have, computed independently in float64; integer
// counters take the maximum.
NamedTensors weighted_mean(const std::vector<NamedTensors>& updates,
                           const std::vector<double>& weights) {
  double total = 0;
  for (double w : weights) total += w;
  NamedTensors out;
  for (std::size_t k = 0; k < updates[0].size(); ++k) {
    const auto& [name, first] = updates[0][k];
    if (!first.is_floating_point()) {
      torch::Tensor m = first.clone();
      for (const auto& u : updates) m = torch::maximum(m, u[k].second);
      out.emplace_back(name, m);
      continue;
    }
    torch::Tensor sum = torch::zeros_like(first, torch::kFloat64);
    for (std::size_t i = 0; i < updates.size(); ++i)
      sum += updates[i][k].second.to(torch::kFloat64) * weights[i];
    out.emplace_back(name, (sum / total).to(first.scalar_type()));
  }
  return out;
}

double max_abs_difference(const NamedTensors& a, const NamedTensors& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (std::size_t k = 0; k < std::min(a.size(), b.size()); ++k) {
    EXPECT_EQ(a[k].first, b[k].first);
    worst = std::max(worst, (a[k].second.to(torch::kFloat64) - b[k].second.to(torch::kFloat64))
                                .abs()
                                .max()
                                .item<double>());
  }
  return worst;
}

TEST_F(DaemonTest, ThreeSiteFedAvgRoundEqualsTheInMemoryAverage) {
  start(yaml(1, 3, 3));
  // Counts as declared in the Hellos, none above half the total: the guard changes nothing.
  auto s1 = site("s1", "", 100), s2 = site("s2", "", 300), s3 = site("s3", "", 350);
  std::vector<NamedTensors> sent = {
      s1->answer_task(100, [](const NamedTensors& g) { return perturbed(g, 1, 0.05, 3); }),
      s2->answer_task(300, [](const NamedTensors& g) { return perturbed(g, 2, 0.05, 5); }),
      s3->answer_task(350, [](const NamedTensors& g) { return perturbed(g, 3, 0.05, 4); })};
  join();
  ASSERT_EQ(failure_, "");
  ASSERT_EQ(outcome_, RunOutcome::kFinished);
  EXPECT_EQ(aggregator_->round(), 1);

  const NamedTensors expected = weighted_mean(sent, {100, 300, 350});
  EXPECT_LT(max_abs_difference(aggregator_->global(), expected), 1e-6);
  // The checkpoint holds exactly the same weights, and the sites were told it is over.
  auto saved = StateStore(dir_ / "state").load();
  ASSERT_TRUE(saved);
  EXPECT_EQ(saved->round, 1);
  EXPECT_EQ(max_abs_difference(saved->global, aggregator_->global()), 0.0);
  for (auto* s : {s1.get(), s2.get(), s3.get()}) {
    auto bye = s->wait_for(proto::MessageType::kBye, 5000ms);
    ASSERT_TRUE(bye);
    EXPECT_THAT(std::get<proto::Bye>(bye->envelope.payload).reason, HasSubstr("finished"));
  }
  auto lines = metrics_lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["round"], 1);
  EXPECT_EQ(lines[0]["outcome"], "completed");
  EXPECT_EQ(lines[0]["updates_accepted"], 3);
  EXPECT_EQ(lines[0]["samples"], 750);
  EXPECT_EQ(lines[0]["clipped"], nlohmann::json::object());
  EXPECT_EQ(lines[0]["capped"], nlohmann::json::object());
  EXPECT_GT(lines[0]["bytes_in"].get<double>(), 3 * 4.0 * 1000);  // three models came in
}

TEST_F(DaemonTest, NanAndOversizedUpdatesAreRejectedAndNeverEnterTheModel) {
  start(yaml(1, 3, 1, "validation: {max_delta_norm: 5, over_bound: refuse}\n"));
  auto s1 = site("s1"), s2 = site("s2"), s3 = site("s3");
  NamedTensors honest =
      s1->answer_task(100, [](const NamedTensors& g) { return perturbed(g, 1, 0.001); });
  s2->answer_task(100, [](const NamedTensors& g) {
    NamedTensors bad = perturbed(g, 2, 0.001);
    bad[0].second.view(-1)[0] = std::numeric_limits<float>::quiet_NaN();
    return bad;
  });
  s3->answer_task(100000, [](const NamedTensors& g) {
    NamedTensors big = perturbed(g, 3, 10.0);
    for (std::size_t i = 0; i < g.size(); ++i)  // valid variances: only the norm is wrong
      if (g[i].first.ends_with("running_var")) big[i].second = g[i].second * 2;
    return big;
  });
  join();
  ASSERT_EQ(failure_, "");
  // One honest update: the new global model is exactly its weights.
  EXPECT_EQ(max_abs_difference(aggregator_->global(), honest), 0.0);
  auto lines = metrics_lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["updates_accepted"], 1);
  EXPECT_EQ(lines[0]["rejected_by_reason"]["non_finite"], 1);
  EXPECT_EQ(lines[0]["rejected_by_reason"]["norm_too_large"], 1);
  // The offenders were told why.
  for (auto [s, says] : {std::pair{s2.get(), "non_finite"}, std::pair{s3.get(), "norm_too_large"}}) {
    bool told = false;
    s->wait_for(proto::MessageType::kBye, 5000ms);
    for (const auto& m : s->others())
      if (auto* e = std::get_if<proto::ErrorMessage>(&m.envelope.payload))
        told |= e->code == proto::ErrorCode::kRejected &&
                e->message.find(says) != std::string::npos;
    EXPECT_TRUE(told) << says;
  }
}

TEST_F(DaemonTest, DefaultSettingsClipABoostedUpdateAndCapALyingSampleCount) {
  start(yaml(1, 3, 3));  // no validation section: the defaults
  auto s1 = site("s1"), s2 = site("s2"), s3 = site("s3");  // each declares 100 images
  NamedTensors a = s1->answer_task(100, [](const NamedTensors& g) { return perturbed(g, 1, 0.01); });
  NamedTensors b = s2->answer_task(100, [](const NamedTensors& g) { return perturbed(g, 2, 0.02); });
  NamedTensors boosted = s3->answer_task(1'000'000, [](const NamedTensors& g) {
    NamedTensors out = perturbed(g, 3, 0.01);
    // Parameters boosted, BatchNorm statistics its own (a negative variance would be refused).
    for (std::size_t i = 0; i < g.size(); ++i)
      if (g[i].second.is_floating_point() && !is_batchnorm_statistic(g[i].first))
        out[i].second = g[i].second + (out[i].second - g[i].second) * 1e6;
    return out;
  });
  join();
  ASSERT_EQ(failure_, "");
  const NamedTensors& g = s1->last_task();
  auto norm = [&](const NamedTensors& x) {
    double sum = 0;
    for (std::size_t i = 0; i < g.size(); ++i)
      if (g[i].second.is_floating_point())
        sum += (x[i].second.to(torch::kFloat64) - g[i].second.to(torch::kFloat64)).square().sum().item<double>();
    return std::sqrt(sum);
  };
  // Bound: 3 x the lower median of the three norms (the larger honest one); s3 is scaled to it
  // and counted with the 100 images it declared, so FedAvg is the plain mean of the three.
  const double bound = 3.0 * std::max(norm(a), norm(b));
  const double factor = bound / norm(boosted);
  NamedTensors clipped;
  for (std::size_t i = 0; i < g.size(); ++i)
    clipped.emplace_back(g[i].first, g[i].second.is_floating_point()
                                         ? g[i].second + (boosted[i].second - g[i].second) * factor
                                         : boosted[i].second);
  EXPECT_LT(max_abs_difference(aggregator_->global(), weighted_mean({a, b, clipped}, {1, 1, 1})), 1e-5);
  EXPECT_LT(norm(aggregator_->global()), bound);
  auto lines = metrics_lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NEAR(lines[0]["bound"].get<double>(), bound, 1e-6 * bound);
  EXPECT_NEAR(lines[0]["clipped"]["s3"].get<double>(), norm(boosted), 1e-6 * norm(boosted));
  EXPECT_EQ(lines[0]["clipped"].size(), 1u);
  EXPECT_EQ(lines[0]["capped"]["s3"],
            nlohmann::json({{"claimed", 1'000'000}, {"counted", 100}, {"by", "hello"}}));
  EXPECT_EQ(lines[0]["samples"], 300);
}

TEST_F(DaemonTest, ARefusedSiteMaySendAValidUpdateUntilTheRoundCloses) {
  start(yaml(1, 2, 2, "validation: {resend_grace: 20, max_refusals: 2}\n"));
  auto s1 = site("s1"), s2 = site("s2");
  NamedTensors a = s1->answer_task(100, [](const NamedTensors& g) { return perturbed(g, 1, 0.01); });
  s2->answer_task(100, [](const NamedTensors& g) {
    NamedTensors bad = perturbed(g, 2, 0.01);
    bad[0].second.view(-1)[0] = std::numeric_limits<float>::quiet_NaN();
    return bad;
  });
  // Refused, told so, and still welcome: the round waits for the resend.
  const std::string refusal = s2->wait_for_error();
  EXPECT_THAT(refusal, HasSubstr("non_finite"));
  EXPECT_THAT(refusal, HasSubstr("still accepted until the round closes"));
  const NamedTensors b = perturbed(s2->last_task(), 2, 0.01);
  s2->send_update(b, 100);
  join();
  ASSERT_EQ(failure_, "");
  EXPECT_LT(max_abs_difference(aggregator_->global(), weighted_mean({a, b}, {1, 1})), 1e-6);
  auto lines = metrics_lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["updates_accepted"], 2);
  EXPECT_EQ(lines[0]["rejected_by_reason"]["non_finite"], 1);
  EXPECT_EQ(lines[0]["silent"], nlohmann::json::array());
}

TEST_F(DaemonTest, AfterMaxRefusalsASiteIsNotHeardUntilTheNextRound) {
  start(yaml(1, 2, 1, "validation: {resend_grace: 20, max_refusals: 2}\n"));
  auto s1 = site("s1"), s2 = site("s2");
  const auto started = std::chrono::steady_clock::now();
  NamedTensors a = s1->answer_task(100, [](const NamedTensors& g) { return perturbed(g, 1, 0.01); });
  auto nan_update = [](const NamedTensors& g) {
    NamedTensors bad = perturbed(g, 2, 0.01);
    bad[0].second.view(-1)[0] = std::numeric_limits<float>::quiet_NaN();
    return bad;
  };
  s2->answer_task(100, nan_update);
  EXPECT_THAT(s2->wait_for_error(), HasSubstr("non_finite"));
  s2->send_update(nan_update(s2->last_task()), 100);
  const std::string second = s2->wait_for_error();
  EXPECT_THAT(second, HasSubstr("non_finite"));
  EXPECT_THAT(second, ::testing::Not(HasSubstr("still accepted"))) << "its last chance is used";
  // The second refusal ends its turn: the round closes without waiting out the grace.
  join();
  ASSERT_EQ(failure_, "");
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(15));
  EXPECT_EQ(max_abs_difference(aggregator_->global(), a), 0.0);
  EXPECT_EQ(metrics_lines()[0]["rejected_by_reason"]["non_finite"], 2);
}

TEST_F(DaemonTest, KrumNeedsMoreSitesThanItsLimitAndSaysSo) {
  // Krum with f = 1 needs 5 updates: min_updates 2 is raised, and the status says 5.
  start(yaml(1, 2, 2, "strategy: {name: krum, f: 1}\n"));
  auto s1 = site("s1"), s2 = site("s2"), s3 = site("s3");
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(aggregator_->round(), 0) << "no round with three sites";
  const auto status = nlohmann::json::parse(util::read_file(dir_ / "state" / "status.json"));
  EXPECT_EQ(status["min_updates"], 5);
  EXPECT_EQ(status["phase"], "waiting_for_sites");
  stop();
  EXPECT_EQ(failure_, "");
}

struct RobustCase {
  const char* strategy;
};

class RobustDaemonTest : public DaemonTest, public ::testing::WithParamInterface<RobustCase> {};

TEST_P(RobustDaemonTest, OneSiteSendingHugeValuesDoesNotMoveTheModel) {
  start(yaml(1, 3, 3, std::string("strategy: ") + GetParam().strategy + "\n"));
  auto s1 = site("s1"), s2 = site("s2"), s3 = site("s3");
  NamedTensors a = s1->answer_task(100, [](const NamedTensors& g) { return perturbed(g, 1, 0.01); });
  NamedTensors b = s2->answer_task(100, [](const NamedTensors& g) { return perturbed(g, 2, 0.01); });
  s3->answer_task(100, [](const NamedTensors& g) {
    NamedTensors out;
    for (const auto& [n, t] : g) out.emplace_back(n, t.is_floating_point() ? t + 1e6 : t);
    return out;
  });
  join();
  ASSERT_EQ(failure_, "");
  // Coordinate-wise, the result lies between the two honest updates.
  for (std::size_t k = 0; k < a.size(); ++k) {
    if (!a[k].second.is_floating_point()) continue;
    auto lo = torch::minimum(a[k].second, b[k].second) - 1e-6;
    auto hi = torch::maximum(a[k].second, b[k].second) + 1e-6;
    const auto& got = aggregator_->global()[k].second;
    EXPECT_TRUE(torch::all(got >= lo).item<bool>() && torch::all(got <= hi).item<bool>())
        << a[k].first;
  }
}

INSTANTIATE_TEST_SUITE_P(Strategies, RobustDaemonTest,
                         ::testing::Values(RobustCase{"{name: median}"},
                                           RobustCase{"{name: trimmed_mean, trim_fraction: 0.34}"}));
// (Krum and Bulyan need more than three sites; their daemon round is in the simulator's tests.)

TEST_F(DaemonTest, ASiteKilledMidRoundLeavesTheRoundToTheOthers) {
  // Unequal weights as declared, no share cap: the result is the exact weighted mean.
  start(yaml(1, 3, 2, "validation: {max_sample_share: 1}\n"));
  auto s1 = site("s1"), s2 = site("s2", "", 300), s3 = site("s3");
  ASSERT_TRUE(s3->wait_for(proto::MessageType::kTask));
  s3->close();  // gone without a word: no Update, no Bye, no heartbeat
  const auto start_time = std::chrono::steady_clock::now();
  NamedTensors a = s1->answer_task(100, [](const NamedTensors& g) { return perturbed(g, 1, 0.01); });
  NamedTensors b = s2->answer_task(300, [](const NamedTensors& g) { return perturbed(g, 2, 0.01); });
  join();
  ASSERT_EQ(failure_, "");
  // Done once s3 was silent for site_timeout (1.5 s), not after round_timeout (30 s).
  EXPECT_LT(std::chrono::steady_clock::now() - start_time, 25s);
  EXPECT_LT(max_abs_difference(aggregator_->global(), weighted_mean({a, b}, {100, 300})), 1e-6);
  auto lines = metrics_lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["silent"], nlohmann::json::array({"s3"}));
  EXPECT_EQ(lines[0]["updates_accepted"], 2);
}

TEST_F(DaemonTest, ARoundWithTooFewUpdatesIsRetried) {
  start(yaml(1, 3, 3));
  auto s1 = site("s1"), s2 = site("s2"), s3 = site("s3");
  ASSERT_TRUE(s3->wait_for(proto::MessageType::kTask));
  s3->close();
  s1->answer_task(100, [](const NamedTensors& g) { return perturbed(g, 1, 0.01); });
  s2->answer_task(100, [](const NamedTensors& g) { return perturbed(g, 2, 0.01); });
  // Once s3 has been silent for site_timeout, attempt 1 ends with 2 of 3 updates.
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (metrics_lines().empty() && std::chrono::steady_clock::now() < deadline) {
    s1->client().send(1, proto::Heartbeat{"idle"});
    s2->client().send(1, proto::Heartbeat{"idle"});
    std::this_thread::sleep_for(100ms);
  }
  // The site comes back (a restarted process) and the round starts again for everyone.
  auto again = site("s3");
  NamedTensors a = s1->answer_task(100, [](const NamedTensors& g) { return perturbed(g, 4, 0.01); });
  NamedTensors b = s2->answer_task(100, [](const NamedTensors& g) { return perturbed(g, 5, 0.01); });
  NamedTensors c = again->answer_task(100, [](const NamedTensors& g) { return perturbed(g, 6, 0.01); });
  join();
  ASSERT_EQ(failure_, "");
  EXPECT_EQ(aggregator_->round(), 1);
  EXPECT_LT(max_abs_difference(aggregator_->global(), weighted_mean({a, b, c}, {1, 1, 1})), 1e-6);
  auto lines = metrics_lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["outcome"], "retry");
  EXPECT_EQ(lines[0]["updates_accepted"], 2);
  EXPECT_EQ(lines[1]["outcome"], "completed");
  EXPECT_EQ(lines[1]["attempt"], 2);
  EXPECT_EQ(lines[1]["round"], 1);
}

TEST_F(DaemonTest, BadFramesAndStrangersDoNotStopTheRound) {
  start(yaml(1, 2, 2, "transport: {max_message_mb: 3}\n"));
  // An unlisted key cannot even connect.
  const std::string refused = ::ppreid::testing::error_of(
      [&] { ScriptedSite stranger(aggregator_->endpoint(), dir_ / "keys", "s1", "stranger"); });
  EXPECT_THAT(refused, HasSubstr("refused"));

  ::ppreid::testing::RawSite raw(aggregator_->endpoint(), dir_ / "keys" / "s3.key",
                                 aggregator_key_);
  proto::Envelope hello;
  hello.federation_id = "fed-test";
  hello.sender_id = "s3";
  hello.payload = proto::Hello{"s3", {}};
  auto expect_error = [&](const std::vector<std::string>& frames, proto::ErrorCode code) {
    raw.send(frames);
    auto reply = raw.receive(kWait);
    ASSERT_TRUE(reply);
    auto* e = std::get_if<proto::ErrorMessage>(&reply->envelope.payload);
    ASSERT_TRUE(e) << proto::to_string(reply->envelope.type());
    EXPECT_EQ(e->code, code) << e->message;
  };
  auto good = ::ppreid::testing::to_strings(proto::encode(hello));
  expect_error({"garbage"}, proto::ErrorCode::kMalformed);
  auto truncated = good;
  truncated[0].resize(truncated[0].size() / 2);
  expect_error(truncated, proto::ErrorCode::kMalformed);
  proto::Envelope v9 = hello;
  v9.version = 9;
  expect_error(::ppreid::testing::to_strings(proto::encode(v9)),
               proto::ErrorCode::kUnsupportedVersion);
  // Over max_message_mb in chunks that libzmq lets through: refused by the decoder.
  proto::Envelope big = hello;
  proto::Update u;
  u.weights = {::ppreid::testing::wire_tensor("big", proto::DType::kF32, {1 << 20}, 1)};  // 4 MB
  u.sample_count = 1;
  big.payload = u;
  expect_error(::ppreid::testing::to_strings(proto::encode(big, {.chunk_bytes = 1 << 20})),
               proto::ErrorCode::kTooLarge);

  // The daemon kept serving: a normal round completes.
  auto s1 = site("s1"), s2 = site("s2");
  s1->answer_task(10, [](const NamedTensors& g) { return perturbed(g, 1, 0.01); });
  s2->answer_task(10, [](const NamedTensors& g) { return perturbed(g, 2, 0.01); });
  join();
  ASSERT_EQ(failure_, "");
  EXPECT_EQ(aggregator_->round(), 1);
  auto lines = metrics_lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["transport_rejected"]["malformed"], 2);
  EXPECT_EQ(lines[0]["transport_rejected"]["unsupported-version"], 1);
  EXPECT_EQ(lines[0]["transport_rejected"]["too-large"], 1);
}

TEST_F(DaemonTest, AStopCheckpointsAndARestartResumesWithTheSameWeights) {
  start(yaml(3, 2, 2));
  {
    auto s1 = site("s1"), s2 = site("s2");
    s1->answer_task(10, [](const NamedTensors& g) { return perturbed(g, 1, 0.01); });
    s2->answer_task(10, [](const NamedTensors& g) { return perturbed(g, 2, 0.01); });
    // Round 2's Task arrives; stop the daemon while the sites "train".
    ASSERT_TRUE(s1->wait_for(proto::MessageType::kTask));
    stop();
    ASSERT_EQ(failure_, "");
    EXPECT_EQ(outcome_, RunOutcome::kStopped);
    auto bye = s1->wait_for(proto::MessageType::kBye, 5000ms);
    ASSERT_TRUE(bye);
    EXPECT_THAT(std::get<proto::Bye>(bye->envelope.payload).reason, HasSubstr("shutdown"));
  }
  const NamedTensors after_round1 = aggregator_->global();
  aggregator_.reset();
  stop_ = false;
  start(yaml(3, 2, 2));
  EXPECT_EQ(aggregator_->round(), 1);
  auto s1 = site("s1"), s2 = site("s2");
  s1->answer_task(10, [](const NamedTensors& g) { return perturbed(g, 3, 0.01); });
  s2->answer_task(10, [](const NamedTensors& g) { return perturbed(g, 4, 0.01); });
  // Round 2's Task carried exactly the weights round 1 produced.
  EXPECT_EQ(max_abs_difference(s1->last_task(), after_round1), 0.0);
  s1->answer_task(10, [](const NamedTensors& g) { return perturbed(g, 5, 0.01); });
  s2->answer_task(10, [](const NamedTensors& g) { return perturbed(g, 6, 0.01); });
  join();
  ASSERT_EQ(failure_, "");
  EXPECT_EQ(aggregator_->round(), 3);
  std::vector<std::int64_t> completed;
  for (const auto& line : metrics_lines())
    if (line["outcome"] == "completed") completed.push_back(line["round"]);
  EXPECT_EQ(completed, (std::vector<std::int64_t>{1, 2, 3}));
}

TEST_F(DaemonTest, ASecondDaemonOnTheSameStateDirectoryIsRefused) {
  start(yaml(1, 1, 1));
  const std::string msg =
      ::ppreid::testing::error_of([&] { Aggregator second(config(yaml(1, 1, 1))); });
  EXPECT_THAT(msg, HasSubstr("another aggregator"));
  EXPECT_THAT(msg, HasSubstr("state_dir"));
}

TEST_F(DaemonTest, ACheckpointOfAnotherFederationIsRefused) {
  start(yaml(1, 1, 1));
  stop();
  aggregator_.reset();
  std::string other = yaml(1, 1, 1);
  other.replace(other.find("fed-test"), 8, "fed-other");
  const std::string msg = ::ppreid::testing::error_of([&] { Aggregator a(config(other)); });
  EXPECT_THAT(msg, HasSubstr("belongs to federation 'fed-test'"));
}

struct BadConfig {
  const char* name;
  std::string from, to;
  const char* says;
};

TEST_F(DaemonTest, ConfigMistakesNameTheKey) {
  const std::string good = yaml(2, 3, 2);
  std::vector<BadConfig> cases = {
      {"per_round", "evaluation:", "sites2: {}\nevaluation:", "sites2"},
      {"min_updates above min_sites", "min_updates: 2", "min_updates: 4", "sites.min_updates"},
      {"listen", "tcp://127.0.0.1:*", "udp://x", "listen"},
      {"strategy", "evaluation:", "strategy: {name: fedmagic}\nevaluation:", "fedmagic"},
      {"no key", "secret_key: keys/aggregator.key, ", "", "security.secret_key"},
      {"timeout", "round_timeout: 30", "round_timeout: -1", "sites.round_timeout"},
      {"centroid protocol", "evaluation: {sites: false}",
       "evaluation: {sites: false, centroid_protocol: paper}",
       "key 'evaluation.centroid_protocol': 'paper' is not one of: reference, strict"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::string text = good;
    auto at = text.find(c.from);
    ASSERT_NE(at, std::string::npos);
    text.replace(at, c.from.size(), c.to);
    EXPECT_THAT(::ppreid::testing::error_of([&] { config(text); }), HasSubstr(c.says));
  }
  // evaluation.centroid_protocol overrides the model config's eval.centroid_protocol.
  EXPECT_EQ(config(good).model.eval.centroid_protocol, reid::CentroidProtocol::kReference);
  std::string strict = good;
  strict.replace(strict.find("evaluation: {sites: false}"), 26,
                 "evaluation: {sites: false, centroid_protocol: strict}");
  EXPECT_EQ(config(strict).model.eval.centroid_protocol, reid::CentroidProtocol::kStrict);
  // The tiny model (1.2 MB) cannot travel under a 1 MB message limit: refused at start.
  EXPECT_THAT(::ppreid::testing::error_of(
                  [&] { Aggregator a(config(yaml(1, 1, 1, "transport: {max_message_mb: 1}\n"))); }),
              HasSubstr("raise it to at least 3"));
  EXPECT_EQ(SiteSampling::parse("0.5")->how_many(3), 2u);
  EXPECT_EQ(SiteSampling::parse("2")->how_many(5), 2u);
  EXPECT_EQ(SiteSampling::parse("all")->how_many(4), 4u);
  EXPECT_EQ(SiteSampling::parse("0.01")->how_many(4), 1u);
  EXPECT_FALSE(SiteSampling::parse("0"));
  EXPECT_FALSE(SiteSampling::parse("1.5"));
  EXPECT_FALSE(SiteSampling::parse("two"));
}


// ---- the real `ppreid aggregator` process ------------------------------------------------------

namespace {

// A port nothing listens on right now (bound once by the kernel's choice, then released).
int free_port() {
  zmq::context_t ctx;
  zmq::socket_t s(ctx, zmq::socket_type::router);
  s.bind("tcp://127.0.0.1:*");
  std::string ep = s.get(zmq::sockopt::last_endpoint);
  return std::stoi(ep.substr(ep.rfind(':') + 1));
}

// `ppreid aggregator --config FILE` with its output appended to LOG.
pid_t spawn_aggregator(const fs::path& config, const fs::path& log) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execl(PPREID_BINARY, PPREID_BINARY, "aggregator", "--config", config.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

std::unique_ptr<ScriptedSite> connect_when_up(const std::string& endpoint, const fs::path& keys,
                                              const std::string& id) {
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (true) {
    try {
      auto s = std::make_unique<ScriptedSite>(endpoint, keys, id);
      s->hello();
      return s;
    } catch (const proto::ConnectError&) {
      if (std::chrono::steady_clock::now() > deadline) throw;
      std::this_thread::sleep_for(100ms);
    }
  }
}

int wait_exit(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

}  // namespace

TEST_F(DaemonTest, KilledWithSigkillAfterARoundTheDaemonResumesAtTheNextWithIdenticalWeights) {
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(free_port());
  std::string text = yaml(2, 2, 2, "validation: {max_sample_share: 1}\n");
  text.replace(text.find("tcp://127.0.0.1:*"), 17, endpoint);
  util::write_file_atomic(dir_ / "agg.yaml", text);
  const fs::path log = dir_ / "aggregator.log";

  pid_t first = spawn_aggregator(dir_ / "agg.yaml", log);
  {
    auto s1 = connect_when_up(endpoint, dir_ / "keys", "s1");
    auto s2 = connect_when_up(endpoint, dir_ / "keys", "s2");
    s1->answer_task(10, [](const NamedTensors& g) { return perturbed(g, 1, 0.01); });
    s2->answer_task(20, [](const NamedTensors& g) { return perturbed(g, 2, 0.01); });
    // Round 2's Task means round 1 is checkpointed; kill the daemon in the middle of round 2.
    ASSERT_TRUE(s1->wait_for(proto::MessageType::kTask));
    ASSERT_EQ(::kill(first, SIGKILL), 0);
    EXPECT_EQ(wait_exit(first), -SIGKILL);
  }
  auto saved = StateStore(dir_ / "state").load();
  ASSERT_TRUE(saved);
  ASSERT_EQ(saved->round, 1);

  pid_t second = spawn_aggregator(dir_ / "agg.yaml", log);
  auto s1 = connect_when_up(endpoint, dir_ / "keys", "s1");
  auto s2 = connect_when_up(endpoint, dir_ / "keys", "s2");
  NamedTensors a = s1->answer_task(10, [](const NamedTensors& g) { return perturbed(g, 3, 0.01); });
  NamedTensors b = s2->answer_task(20, [](const NamedTensors& g) { return perturbed(g, 4, 0.01); });
  EXPECT_EQ(max_abs_difference(s1->last_task(), saved->global), 0.0);
  EXPECT_EQ(wait_exit(second), 0) << util::read_file(log);

  auto final_state = StateStore(dir_ / "state").load();
  ASSERT_TRUE(final_state);
  EXPECT_EQ(final_state->round, 2);
  EXPECT_LT(max_abs_difference(final_state->global, weighted_mean({a, b}, {10, 20})), 1e-6);
  std::vector<std::int64_t> completed;
  for (const auto& line : metrics_lines())
    if (line["outcome"] == "completed") completed.push_back(line["round"]);
  EXPECT_EQ(completed, (std::vector<std::int64_t>{1, 2}));
  EXPECT_THAT(util::read_file(log), HasSubstr("resuming federation 'fed-test' after round 1"));

  // `ppreid aggregator status` reads what the daemon left.
  auto status = ::ppreid::testing::run_ppreid("aggregator status --state-dir " +
                                              (dir_ / "state").string());
  EXPECT_EQ(status.exit_code, 0) << status.out;
  EXPECT_THAT(status.out, HasSubstr("finished"));
  EXPECT_THAT(status.out, HasSubstr("not running"));
}

TEST_F(DaemonTest, SigtermStopsTheDaemonCleanly) {
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(free_port());
  std::string text = yaml(2, 2, 2, "validation: {max_sample_share: 1}\n");
  text.replace(text.find("tcp://127.0.0.1:*"), 17, endpoint);
  util::write_file_atomic(dir_ / "agg.yaml", text);
  pid_t pid = spawn_aggregator(dir_ / "agg.yaml", dir_ / "aggregator.log");
  auto s1 = connect_when_up(endpoint, dir_ / "keys", "s1");
  // Running and waiting for a second site: `status` says so.
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  ::ppreid::testing::RunResult status;
  do {
    s1->client().send(0, proto::Heartbeat{"idle"});
    std::this_thread::sleep_for(200ms);
    status = ::ppreid::testing::run_ppreid("aggregator status --json --state-dir " +
                                           (dir_ / "state").string());
  } while ((status.out.find("waiting_for_sites") == std::string::npos ||
            status.out.find("\"s1\"") == std::string::npos) &&
           std::chrono::steady_clock::now() < deadline);
  EXPECT_THAT(status.out, HasSubstr("\"alive\": true"));
  EXPECT_THAT(status.out, HasSubstr("\"id\": \"s1\""));
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  auto bye = s1->wait_for(proto::MessageType::kBye, 10000ms);
  ASSERT_TRUE(bye);
  EXPECT_THAT(std::get<proto::Bye>(bye->envelope.payload).reason, HasSubstr("shutdown"));
  EXPECT_EQ(wait_exit(pid), 0) << util::read_file(dir_ / "aggregator.log");
  EXPECT_THAT(util::read_file(dir_ / "aggregator.log"), HasSubstr("stopped after round 0"));
}

}  // namespace
}  // namespace ppreid::agg::daemon_tests
