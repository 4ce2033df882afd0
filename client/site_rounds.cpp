#include "client/site.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "client/site_internal.h"
#include "core/reid/batch_norm.h"
#include "core/reid/features.h"
#include "core/reid/local_training.h"
#include "core/util/error.h"
#include "protocols/text.h"
#include "protocols/torch_wire.h"

// A site's rounds: Task and Evaluate, and the data-parallel ranks that train a Task together
// (see site.cpp for how the runtime is split).

namespace ppreid::client {
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kUpdateAttempts = 3;  // then the Update is dropped: the aggregator retries rounds

// "" when `got` has exactly the names and shapes of `expected`, else what differs.
std::string mismatch(const reid::NamedTensors& expected, const reid::NamedTensors& got) {
  std::map<std::string, const torch::Tensor*> want;
  for (const auto& [name, t] : expected) want.emplace(name, &t);
  std::string problems;
  int shown = 0;
  auto note = [&](const std::string& text) {
    if (++shown <= 8) problems += (problems.empty() ? "" : "; ") + text;
  };
  std::set<std::string> seen;
  for (const auto& [name, t] : got) {
    seen.insert(name);
    auto it = want.find(name);
    if (it == want.end()) note("unexpected tensor '" + proto::printable_for_log(name) + "'");
    else if (t.sizes() != it->second->sizes())
      note("'" + name + "' is " + reid::shape_string(t) + " in the message but " +
           reid::shape_string(*it->second) + " here");
  }
  for (const auto& [name, t] : expected)
    if (!seen.count(name)) note("missing '" + name + "'");
  if (shown > 8) problems += "; and " + std::to_string(shown - 8) + " more";
  return problems;
}

nlohmann::json settings_to_json(const reid::LocalRoundSettings& s) {
  return {{"local_epochs", s.local_epochs}, {"learning_rate", s.learning_rate},
          {"weight_decay", s.weight_decay}, {"fedprox_mu", s.fedprox_mu},
          {"p", s.p},                       {"k", s.k},
          {"seed", s.seed},                 {"round", s.round}};
}

reid::LocalRoundSettings settings_from_json(const nlohmann::json& j) {
  reid::LocalRoundSettings s;
  s.local_epochs = j.at("local_epochs").get<int>();
  s.learning_rate = j.at("learning_rate").get<double>();
  s.weight_decay = j.at("weight_decay").get<double>();
  s.fedprox_mu = j.at("fedprox_mu").get<double>();
  s.p = j.at("p").get<int>();
  s.k = j.at("k").get<int>();
  s.seed = j.at("seed").get<std::uint64_t>();
  s.round = j.at("round").get<std::uint64_t>();
  return s;
}

}  // namespace

// ---- messages ------------------------------------------------------------------------------

void Site::on_task(std::uint64_t round, const proto::Task& task, const std::atomic<bool>& stop) {
  if (highest_task_round_ && round < *highest_task_round_) {
    ++stats_.stale_tasks;
    spdlog::warn("{}stale task for round {} dropped (round {} already seen)", log_prefix(), round,
                 *highest_task_round_);
    return;
  }
  highest_task_round_ = round;
  reid::NamedTensors global = proto::from_wire(task.weights);
  const std::string problems = mismatch(model_->shared_state(), global);
  if (!problems.empty()) {
    const std::string text = "site " + config_.site_id + ": model mismatch: " + problems;
    try {
      client_->send(round, proto::ErrorMessage{proto::ErrorCode::kRejected, text});
    } catch (const proto::TransportError&) {
      // The site stops either way; the aggregator notices the missing Update.
    }
    throw Error("the round " + std::to_string(round) + " Task does not fit this site's model (" +
                problems + "); use the same model profile as the aggregator (training.config '" +
                config_.train_config.string() + "' in '" + config_.file.string() + "')");
  }
  secure_.reset();  // a new Task ends any secure aggregation round in progress
  secure_update_.clear();
  if (task.secure_aggregation) {
    // Checked before training: refusing the settings after an hour of training helps nobody.
    try {
      secure_ = std::make_unique<secagg::SiteSession>(
          secagg::RoundContext{config_.federation_id, round}, config_.site_id,
          *task.secure_aggregation, task.secure_aggregation->sites);
    } catch (const secagg::ProtocolError& e) {
      ++stats_.secure_refusals;
      spdlog::error("{}round {}: {}", log_prefix(), round, e.what());
      send_logged(round, proto::ErrorMessage{proto::ErrorCode::kRejected,
                                             "site " + config_.site_id + ": " + e.what()},
                  "Error");
      return;
    }
  }
  const proto::TrainingSettings& s = task.settings;
  reid::LocalRoundSettings settings;
  settings.local_epochs = static_cast<int>(s.local_epochs);
  settings.learning_rate = s.learning_rate;
  settings.weight_decay = s.weight_decay;
  settings.fedprox_mu = s.fedprox_mu;
  settings.p = static_cast<int>(s.batch_identities);
  settings.k = static_cast<int>(s.batch_instances);
  settings.seed = s.seed;
  settings.round = round;
  stats_.last_fedprox_mu = s.fedprox_mu;
  spdlog::info("{}round {}: training {} local epoch(s), lr {:g}, mu {:g}", log_prefix(), round,
               s.local_epochs, s.learning_rate, s.fedprox_mu);
  if (comm_) {
    post_command({{"kind", "task"}, {"settings", settings_to_json(settings)}});
    for (auto& [name, tensor] : global) {
      tensor = tensor.contiguous();
      comm_->broadcast(tensor, 0, "round " + std::to_string(round) + " global weights");
    }
  }

  auto last_beat = Clock::now();
  const std::string status = "training round " + std::to_string(round);
  reid::LocalRoundResult result;
  try {
    result = reid::train_local_round(
        model_, center_, *store_, train_config_, global, settings,
        [&](const reid::LocalRoundProgress&) {
          if (Clock::now() - last_beat >= config_.heartbeat_interval) {
            heartbeat(status);
            last_beat = Clock::now();
          }
          return !stop.load();
        },
        comm_);
  } catch (const proto::TransportError&) {
    throw;
  } catch (const dist::CollectiveError&) {
    throw;  // another rank of this site is gone: the site cannot train any more rounds
  } catch (const Error& e) {
    // Diverged or unusable settings: this round gets no Update (the aggregator retries or
    // proceeds without it); the site keeps serving, and the next Task reloads the weights.
    spdlog::error("{}round {} failed: {}", log_prefix(), round, e.what());
    try {
      client_->send(round, proto::ErrorMessage{proto::ErrorCode::kInternal,
                                               "site " + config_.site_id + ": " + e.what()});
    } catch (const proto::TransportError&) {
    }
    return;
  }
  last_task_weights_ = std::move(global);
  if (!result.completed) {
    spdlog::info("{}round {} abandoned after {} steps (stopping)", log_prefix(), round,
                 result.steps);
    return;
  }
  ++stats_.tasks_trained;
  stats_.last_proximal_loss = result.mean_loss.proximal;

  reid::NamedTensors shared = model_->shared_state();
  if (hooks_.before_update) {
    const UpdateDecision decision = hooks_.before_update(round, last_task_weights_, shared);
    if (decision.action != UpdateAction::kSend) {
      spdlog::warn("{}round {}: Update withheld by a fault hook{}", log_prefix(), round,
                   decision.action == UpdateAction::kVanish ? "; vanishing without a word" : "");
      vanished_ = decision.action == UpdateAction::kVanish;
      save_state(round);
      return;
    }
    if (decision.delay.count() > 0) {
      spdlog::info("{}round {}: holding the Update back for {} ms (straggler)", log_prefix(),
                   round, decision.delay.count());
      const auto until = Clock::now() + decision.delay;
      while (Clock::now() < until && !stop.load()) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
        if (!detail::sleep_unless_stopped(std::min(left, config_.heartbeat_interval), stop)) break;
        heartbeat(status);
      }
      if (stop.load()) return;
    }
  }
  if (secure_) {
    start_secure_round(round, shared,
                       static_cast<double>(hooks_.claimed_samples
                                               ? hooks_.claimed_samples(round, result.samples)
                                               : result.samples),
                       result.mean_loss.total);
    save_state(round);
    return;
  }
  proto::Update update;
  update.weights = proto::to_wire(shared);
  update.is_delta = false;
  update.sample_count =
      hooks_.claimed_samples ? hooks_.claimed_samples(round, result.samples) : result.samples;
  update.metrics = {{"loss", result.mean_loss.total},
                    {"seconds", result.seconds},
                    {"images_per_second", result.images_per_second},
                    {"steps", static_cast<double>(result.steps)}};
  bool sent = false;
  auto backoff = config_.reconnect_initial;
  for (int attempt = 1; attempt <= kUpdateAttempts && !sent; ++attempt) {
    try {
      client_->send(round, update);
      sent = true;
    } catch (const proto::HandshakeError&) {
      throw;
    } catch (const proto::TransportError& e) {
      spdlog::warn("{}round {}: Update not sent (attempt {}/{}): {}", log_prefix(), round,
                   attempt, kUpdateAttempts, e.what());
      if (attempt < kUpdateAttempts && !detail::sleep_unless_stopped(backoff, stop)) break;
      backoff = std::min(backoff * 2, config_.reconnect_max);
    }
  }
  if (sent) {
    ++stats_.updates_sent;
    spdlog::info("{}round {}: Update sent (loss {:.4f}, {} steps, {:.1f} s, {:.0f} images/s)",
                 log_prefix(), round, result.mean_loss.total, result.steps, result.seconds,
                 result.images_per_second);
  } else {
    ++stats_.updates_dropped;
    spdlog::warn("{}round {}: Update dropped; the aggregator will retry the round", log_prefix(),
                 round);
  }
  // Saved after every trained round, sent or not: the head is this site's own progress.
  save_state(round);
}

void Site::on_evaluate(std::uint64_t round, const proto::Evaluate& evaluate) {
  proto::EvalResult result;
  if (!config_.evaluate || store_->query.empty() || store_->gallery.empty()) {
    spdlog::info("{}round {}: Evaluate answered without metrics ({})", log_prefix(), round,
                 config_.evaluate ? "the store has no query/gallery split"
                                  : "training.evaluate is off");
  } else {
    reid::NamedTensors weights = evaluate.weights.empty() ? last_task_weights_
                                                          : proto::from_wire(evaluate.weights);
    if (weights.empty()) weights = model_->shared_state();
    const std::string problems = mismatch(model_->shared_state(), weights);
    if (!problems.empty()) {
      client_->send(round, proto::ErrorMessage{proto::ErrorCode::kRejected,
                                               "site " + config_.site_id +
                                                   ": Evaluate: model mismatch: " + problems});
      return;
    }
    // A second model: the training model, its head and its BatchNorm statistics stay as they
    // are, whatever the aggregator asks to evaluate.
    reid::ReidModel probe(reid::ModelOptions{train_config_.backbone, 0, true});
    probe->load_shared_state(weights);
    data::EvalLoaderOptions opts;
    opts.batch_size = train_config_.eval.batch_size;
    opts.workers = train_config_.profile.loader.workers;
    nlohmann::json m = reid::evaluate_model(probe, *store_, train_config_.profile.transform,
                                            train_config_.eval.metric, true, opts, nullptr,
                                            train_config_.eval.centroid_protocol);
    result.query_count = store_->query.size();
    result.metrics = {{"mAP", m["instance"]["mAP"].get<double>()},
                      {"rank1", m["instance"]["rank1"].get<double>()},
                      {"rank5", m["instance"]["rank5"].get<double>()},
                      {"centroid_mAP", m["centroid"]["mAP"].get<double>()},
                      {"centroid_rank1", m["centroid"]["rank1"].get<double>()}};
    ++stats_.evaluations;
    // EvalResult carries numbers only: the protocol behind centroid_mAP is the site's
    // eval.centroid_protocol, said here.
    spdlog::info("{}round {}: local mAP {:.4f} rank1 {:.4f} (centroid mAP {:.4f}, {} protocol)",
                 log_prefix(), round, result.metrics["mAP"], result.metrics["rank1"],
                 result.metrics["centroid_mAP"],
                 reid::to_string(train_config_.eval.centroid_protocol));
  }
  try {
    client_->send(round, result);
  } catch (const proto::HandshakeError&) {
    throw;
  } catch (const proto::TransportError& e) {
    spdlog::warn("{}round {}: EvalResult not sent: {}", log_prefix(), round, e.what());
  }
}

// ---- data-parallel ranks ---------------------------------------------------------------------

void Site::post_command(const nlohmann::json& command) {
  comm_->post("site/command/" + std::to_string(++commands_posted_), command.dump());
}

std::optional<std::string> Site::await_post(const std::string& key,
                                            const std::atomic<bool>& stop) {
  // Polled, not a collective wait: rank 0 may spend hours between Tasks, and this notices both a
  // stop signal and rank 0's death (its store goes away) within a poll interval.
  while (!stop.load()) {
    if (auto value = comm_->poll(key)) return value;
    std::this_thread::sleep_for(50ms);
  }
  return std::nullopt;
}

void Site::share_start_state() {
  // Rank 0's model (its saved head, centres and initial weights) is every rank's start.
  reid::broadcast_module_state(*model_, *comm_);
  reid::broadcast_module_state(*center_, *comm_);
}

SiteExit Site::follow(const std::atomic<bool>& stop) {
  spdlog::info("{}waiting for rank 0 to prepare the store", log_prefix());
  if (!await_post("site/ready", stop)) return SiteExit::kStopped;
  if (!prepared_) prepare();
  share_start_state();
  for (std::uint64_t n = 1;; ++n) {
    const auto text = await_post("site/command/" + std::to_string(n), stop);
    if (!text) return SiteExit::kStopped;
    const nlohmann::json command = nlohmann::json::parse(*text);
    const std::string kind = command.at("kind").get<std::string>();
    if (kind == "exit") {
      const std::string reason = command.at("reason").get<std::string>();
      if (reason == "failed")
        throw Error("rank 0 of site " + config_.site_id + " failed (" +
                    command.value("message", std::string("?")) + "); see its log");
      spdlog::info("{}rank 0 says the site is done ({})", log_prefix(), reason);
      return reason == "finished" ? SiteExit::kFinished : SiteExit::kStopped;
    }
    if (kind != "task")
      throw Error("rank 0 posted an unknown command '" + kind +
                  "'; run the same ppreid version on every rank");
    const reid::LocalRoundSettings settings = settings_from_json(command.at("settings"));
    reid::NamedTensors global = model_->shared_state();
    for (auto& [name, tensor] : global)
      comm_->broadcast(tensor, 0, "round " + std::to_string(settings.round) + " global weights");
    try {
      const reid::LocalRoundResult result = reid::train_local_round(
          model_, center_, *store_, train_config_, global, settings, nullptr, comm_);
      if (result.completed) ++stats_.tasks_trained;
    } catch (const dist::CollectiveError&) {
      throw;
    } catch (const Error& e) {
      // Rank 0 failed the same way (the checks and the loss are the same on every rank) and
      // reports it to the aggregator; wait for its next command.
      spdlog::error("{}round {} failed: {}", log_prefix(), settings.round, e.what());
    }
  }
}

}  // namespace ppreid::client
