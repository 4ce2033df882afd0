#include "aggregator/aggregator.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <random>

#include "core/data/dataset.h"
#include "core/reid/features.h"
#include "core/reid/model.h"
#include "core/util/atomic_file.h"
#include "core/util/error.h"
#include "core/util/sha256.h"
#include "core/util/threads.h"
#include "protocols/torch_wire.h"

namespace ppreid::agg {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

constexpr milliseconds kPollSlice{200};

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out.empty() ? "none" : out;
}

template <class Set>
std::vector<std::string> to_vector(const Set& s) {
  return {s.begin(), s.end()};
}

}  // namespace

// The advisory lock that keeps a second daemon out of a state directory: two aggregators
// writing one checkpoint would each lose the other's rounds.
class Aggregator::Lock {
 public:
  explicit Lock(const fs::path& dir) {
    fs::create_directories(dir);
    const fs::path file = dir / "aggregator.lock";
    fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) throw Error("cannot open the lock file '" + file.string() + "'");
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      std::string holder = util::read_file(file);
      ::close(fd_);
      throw Error("another aggregator (pid " + (holder.empty() ? std::string("?") : holder) +
                  ") is running on the state directory '" + dir.string() +
                  "'; stop it first or give this one another state_dir");
    }
    std::string pid = std::to_string(::getpid());
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) < 0)
      spdlog::warn("cannot write the pid into '{}'", file.string());
  }
  ~Lock() { ::close(fd_); }  // closing releases the flock

 private:
  int fd_ = -1;
};

struct Aggregator::LiveSite {
  proto::Peer peer;
  proto::Hello hello;
  bool said_hello = false;
  std::string status = "connected";
  Clock::time_point last_seen;
};

struct Aggregator::RoundProgress {
  std::int64_t round = 0;
  int attempt = 1;
  std::set<std::string> asked;
  std::set<std::string> answered;  // sent an update for this round (accepted or refused)
  std::optional<proto::Task> task;  // re-sent to an asked site that reconnects mid-round
  RoundRecord record;
  double loss_weighted = 0.0;
  std::int64_t loss_samples = 0;
  bool evaluating = false;
  std::map<std::string, proto::EvalResult> eval_results;
  std::set<std::string> evaluated;  // the keys of eval_results
};

Aggregator::Aggregator(AggregatorConfig config, AggregatorHooks hooks)
    : config_(std::move(config)),
      hooks_(std::move(hooks)),
      lock_(std::make_unique<Lock>(config_.state_dir)),
      store_(config_.state_dir),
      strategy_(make_strategy(config_.strategy)),
      validator_(config_.validation),
      metrics_(config_.state_dir / "metrics.jsonl"),
      status_(config_.state_dir),
      started_at_(std::chrono::system_clock::now()) {
  util::configure_torch_threads(config_.threads);
  if (auto saved = store_.load())
    resume(std::move(*saved));
  else
    start_fresh();
  // Every Task carries the whole shared model: refuse now rather than at the first round.
  const std::uint64_t model_bytes = byte_size(state_.global);
  if (model_bytes + (1u << 20) > config_.max_message_bytes)
    throw Error(config_.source + ": transport.max_message_mb is " +
                std::to_string(config_.max_message_bytes >> 20) + " but one model update takes " +
                std::to_string(model_bytes) + " bytes; raise it to at least " +
                std::to_string((model_bytes >> 20) + 2));
  server_ = std::make_unique<proto::Server>(config_.server_options());
  server_->set_rejection_observer([this](const proto::Rejection& r) {
    ++transport_rejections_;
    ++transport_rejections_by_code_[proto::to_string(r.code)];
  });
  spdlog::info("aggregator of federation '{}' listening on {} ({}), strategy {}, {} rounds",
               config_.federation_id, server_->endpoint(),
               config_.security == proto::Security::kCurve ? "CURVE" : "INSECURE",
               to_string(config_.strategy.kind),
               config_.rounds == 0 ? std::string("unlimited") : std::to_string(config_.rounds));
  if (hooks_.on_listening) hooks_.on_listening(server_->endpoint());
}

Aggregator::~Aggregator() = default;

const std::string& Aggregator::endpoint() const { return server_->endpoint(); }

void Aggregator::start_fresh() {
  torch::manual_seed(config_.seed);
  reid::ReidModel model(reid::ModelOptions{config_.model.backbone, 0, true});
  state_ = AggregatorState{};
  state_.round = 0;
  state_.global = model->shared_state();
  state_.strategy = strategy_->state();
  checkpoint();
  std::int64_t params = 0;
  for (const auto& [name, t] : state_.global) params += t.numel();
  spdlog::info("new federation '{}': initial {} model ({} tensors, {} values, seed {}) "
               "checkpointed as round 0 in {}",
               config_.federation_id, config_.model.backbone.arch, state_.global.size(), params,
               config_.seed, store_.checkpoint_dir().string());
}

void Aggregator::resume(AggregatorState saved) {
  const std::string where = store_.checkpoint_dir().string();
  const std::string saved_federation = saved.info.value("federation_id", std::string());
  if (saved_federation != config_.federation_id)
    throw Error("the checkpoint in '" + where + "' belongs to federation '" + saved_federation +
                "' but " + config_.source + " says '" + config_.federation_id +
                "'; use another state_dir for a new federation");
  reid::ReidModel model(reid::ModelOptions{config_.model.backbone, 0, true});
  std::string diff = structure_difference(model->shared_state(), saved.global);
  if (!diff.empty())
    throw Error("the checkpoint in '" + where + "' holds another model than " +
                config_.model_config.string() + " builds (" + diff +
                "); use the model config the federation started with, or another state_dir");
  try {
    strategy_->restore(saved.strategy, saved.global);
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + " (the checkpoint in '" + where + "' was written by " +
                std::string(to_string(saved.strategy.kind)) + ", " + config_.source +
                " asks for " + std::string(to_string(config_.strategy.kind)) +
                "; keep the strategy of a running federation or use another state_dir)");
  }
  state_ = std::move(saved);
  spdlog::info("resuming federation '{}' after round {} from {} ({} known sites)",
               config_.federation_id, state_.round, where, state_.sites.size());
}

void Aggregator::checkpoint() {
  state_.info = {{"federation_id", config_.federation_id},
                 {"model_arch", config_.model.backbone.arch},
                 {"model_config", config_.model_config.filename().string()}};
  store_.save(state_);
}

RunOutcome Aggregator::run(const std::atomic<bool>& stop) {
  while (!stop) {
    if (config_.rounds > 0 && state_.round >= config_.rounds) {
      spdlog::info("all {} rounds completed; telling the sites the federation is finished",
                   config_.rounds);
      say_bye_to_all("finished: " + std::to_string(config_.rounds) + " rounds completed");
      write_status("finished");
      return RunOutcome::kFinished;
    }
    wait_for_sites(stop);
    for (int attempt = 1; !stop; ++attempt) {
      if (run_round(attempt, stop)) break;
      if (stop) break;
      if (config_.max_attempts > 0 && attempt >= config_.max_attempts) {
        say_bye_to_all("shutdown: round " + std::to_string(state_.round + 1) + " failed");
        write_status("failed");
        throw Error("round " + std::to_string(state_.round + 1) + " failed " +
                    std::to_string(attempt) + " times (fewer than " +
                    std::to_string(config_.min_updates) + " valid updates each time; see " +
                    metrics_.file().string() + "); the last completed round " +
                    std::to_string(state_.round) + " is checkpointed; raise " +
                    "sites.max_attempts or lower sites.min_updates and restart");
      }
      wait_for_sites(stop);
    }
  }
  if (strategy_->in_round()) strategy_->abandon();
  checkpoint();  // the registry may have learned new sites since the last round
  say_bye_to_all("shutdown: the aggregator was stopped after round " +
                 std::to_string(state_.round) + "; it resumes from there");
  write_status("stopped");
  spdlog::info("stopped after round {}; state checkpointed in {}", state_.round,
               store_.checkpoint_dir().string());
  return RunOutcome::kStopped;
}

void Aggregator::wait_for_sites(const std::atomic<bool>& stop) {
  auto last_log = Clock::now() - std::chrono::hours(1);
  while (!stop) {
    expire_silent_sites();
    if (live_.size() >= config_.min_sites) return;
    if (Clock::now() - last_log > std::chrono::seconds(10)) {
      spdlog::info("waiting for sites: {} of at least {} connected ({})", live_.size(),
                   config_.min_sites, join(live_ids()));
      last_log = Clock::now();
    }
    write_status("waiting_for_sites");
    poll(kPollSlice, nullptr);
  }
}

bool Aggregator::run_round(int attempt, const std::atomic<bool>& stop) {
  const std::int64_t r = state_.round + 1;
  const auto round_start = Clock::now();
  const auto stats_before = server_->stats();
  RoundProgress p;
  p.round = r;
  p.attempt = attempt;

  // Sample the round's sites reproducibly from (seed, round, attempt).
  std::vector<std::string> ids = live_ids();
  const std::size_t live_count = ids.size();
  std::mt19937_64 rng(config_.seed * 0x9E3779B97F4A7C15ull + static_cast<std::uint64_t>(r) * 1000 +
                      static_cast<std::uint64_t>(attempt));
  std::shuffle(ids.begin(), ids.end(), rng);
  ids.resize(config_.sites_per_round.how_many(ids.size()));
  p.asked = {ids.begin(), ids.end()};
  p.record.round = r;
  p.record.attempt = attempt;
  p.record.started = utc_now_iso();
  p.record.sites_asked = to_vector(p.asked);

  validator_.begin_round(r, state_.global, p.asked);
  strategy_->begin_round(state_.global);
  proto::Task task;
  task.weights = proto::to_wire(state_.global);
  task.settings = config_.task;
  task.settings.fedprox_mu = strategy_->task_settings().value("proximal_mu", 0.0);
  std::vector<proto::Peer> peers;
  for (const auto& id : p.asked) peers.push_back(live_.at(id).peer);
  std::vector<proto::Peer> unreachable = server_->send_to_all(peers, r, task);
  for (const auto& id : p.asked)
    if (std::find(unreachable.begin(), unreachable.end(), live_.at(id).peer) != unreachable.end()) {
      spdlog::warn("round {}: site {} could not be sent its Task; not waiting for it", r, id);
      live_.erase(id);
    }
  p.task = std::move(task);
  spdlog::info("round {}{}: Task sent to {} of {} live sites ({})", r,
               attempt > 1 ? " (attempt " + std::to_string(attempt) + ")" : std::string(),
               p.asked.size(), live_count,
               join(p.record.sites_asked));
  write_status("training", &p);

  serve_until(round_start + config_.round_timeout, p.asked, p.answered, "training", p, stop);
  for (const auto& id : p.asked)
    if (!p.answered.count(id)) p.record.silent.push_back(id);

  auto finish_record = [&](const char* outcome) {
    const auto& after = server_->stats();
    p.record.outcome = outcome;
    p.record.seconds = seconds_since(round_start);
    p.record.bytes_in = after.bytes_in - stats_before.bytes_in;
    p.record.bytes_out = after.bytes_out - stats_before.bytes_out;
    p.record.transport_rejected = transport_rejections_by_code_;
    transport_rejections_by_code_.clear();
    if (p.loss_samples > 0) p.record.train_loss = p.loss_weighted / p.loss_samples;
  };

  if (stop) {
    strategy_->abandon();
    finish_record("stopped");
    metrics_.append(p.record.to_json());
    spdlog::info("round {} abandoned: stop requested", r);
    return false;
  }
  if (p.record.accepted.size() < config_.min_updates) {
    strategy_->abandon();
    finish_record("retry");
    metrics_.append(p.record.to_json());
    spdlog::warn("round {} attempt {}: {} valid update(s), {} needed (silent: {}; rejected: {}); "
                 "retrying the round",
                 r, attempt, p.record.accepted.size(), config_.min_updates,
                 join(p.record.silent), p.record.rejected.size());
    return false;
  }

  const auto agg_start = Clock::now();
  NamedTensors next = strategy_->finish();
  p.record.aggregation_seconds = seconds_since(agg_start);
  state_.global = std::move(next);
  state_.round = r;
  state_.strategy = strategy_->state();
  for (const auto& [site, samples] : p.record.accepted)
    if (state_.sites.find(site)) state_.sites.record_update(site, r, samples);
  checkpoint();
  finish_record("completed");
  std::vector<std::string> accepted_ids;
  for (const auto& [site, samples] : p.record.accepted) accepted_ids.push_back(site);
  metrics_.append(p.record.to_json());
  spdlog::info("round {} completed: {} update(s) from {} ({} samples), {} aggregated in {:.3f} s; "
               "checkpointed",
               r, p.record.accepted.size(), join(accepted_ids),
               p.record.to_json()["samples"].get<std::int64_t>(), to_string(strategy_->kind()),
               p.record.aggregation_seconds);

  std::set<std::string> contributors;
  for (const auto& [site, n] : p.record.accepted) contributors.insert(site);
  evaluate(p, contributors, stop);
  metrics_.replace_last(p.record.to_json());
  if (hooks_.on_round) hooks_.on_round(p.record, state_);
  return true;
}

void Aggregator::evaluate(RoundProgress& p, const std::set<std::string>& sites,
                          const std::atomic<bool>& stop) {
  nlohmann::json eval = nlohmann::json::object();
  if (config_.evaluate_on_sites && !sites.empty()) {
    p.evaluating = true;
    std::set<std::string> asked;
    std::vector<proto::Peer> peers;
    for (const auto& id : sites)
      if (live_.count(id)) asked.insert(id), peers.push_back(live_.at(id).peer);
    proto::Evaluate request{proto::to_wire(state_.global)};
    server_->send_to_all(peers, p.round, request);
    serve_until(Clock::now() + config_.eval_timeout, asked, p.evaluated, "evaluating", p, stop);
    p.evaluating = false;
    // Query-weighted means: the global model's retrieval over the union of the sites' queries.
    std::map<std::string, double> sums;
    std::map<std::string, std::uint64_t> weights;
    std::uint64_t queries = 0;
    nlohmann::json per_site = nlohmann::json::object();
    for (const auto& [site, result] : p.eval_results) {
      per_site[site] = {{"queries", result.query_count}, {"metrics", result.metrics}};
      if (result.query_count == 0) continue;
      queries += result.query_count;
      for (const auto& [name, value] : result.metrics)
        if (std::isfinite(value)) sums[name] += value * result.query_count,
                                  weights[name] += result.query_count;
    }
    nlohmann::json sites_json = {{"queries", queries}, {"per_site", per_site}};
    for (const auto& [name, sum] : sums) sites_json[name] = sum / weights[name];
    eval["sites"] = sites_json;
    if (queries > 0 && sites_json.contains("mAP"))
      spdlog::info("round {}: global model on {} site(s)' query sets ({} queries): mAP {:.4f}, "
                   "rank-1 {:.4f}",
                   p.round, p.eval_results.size(), queries, sites_json["mAP"].get<double>(),
                   sites_json.value("rank1", 0.0));
    else
      spdlog::warn("round {}: no site returned an evaluation within {} s", p.round,
                   config_.eval_timeout.count() / 1000.0);
  }
  if (config_.eval_dataset) {
    if (!eval_data_)
      {
      // Only query and gallery are used; a train split may be absent or empty.
      data::LoadOptions test_only = data::present_splits(*config_.eval_dataset);
      test_only.require_query_gallery = true;
      eval_data_ = std::make_unique<data::Dataset>(data::load_dataset(*config_.eval_dataset, test_only));
    }
    reid::ReidModel model(reid::ModelOptions{config_.model.backbone, 0, true});
    model->load_shared_state(state_.global);
    model->eval();
    data::EvalLoaderOptions opts;
    opts.batch_size = config_.model.eval.batch_size;
    opts.workers = config_.model.profile.loader.workers;
    nlohmann::json metrics = reid::evaluate_model(model, *eval_data_, config_.model.profile.transform,
                                                  config_.model.eval.metric, true, opts);
    eval["dataset"] = metrics;
    spdlog::info("round {}: global model on {}: mAP {:.4f}, rank-1 {:.4f} (centroid mAP {:.4f})",
                 p.round, config_.eval_dataset->string(),
                 metrics["instance"]["mAP"].get<double>(), metrics["instance"]["rank1"].get<double>(),
                 metrics.contains("centroid") ? metrics["centroid"]["mAP"].get<double>() : 0.0);
  }
  p.record.eval = eval;
}

void Aggregator::serve_until(Clock::time_point deadline, const std::set<std::string>& asked,
                             const std::set<std::string>& answered, const char* phase,
                             RoundProgress& p, const std::atomic<bool>& stop) {
  while (!stop && Clock::now() < deadline) {
    bool waiting = false;
    for (const auto& id : asked)
      if (!answered.count(id) && live_.count(id)) waiting = true;
    if (!waiting) return;
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    poll(std::clamp(left, milliseconds(1), kPollSlice), &p);
    expire_silent_sites();
    write_status(phase, &p);
  }
}

void Aggregator::poll(milliseconds timeout, RoundProgress* p) {
  std::optional<proto::Received> in = server_->receive(timeout);
  if (!in) return;
  const std::string& id = in->site_id;
  const proto::MessageType type = in->envelope.type();
  if (type == proto::MessageType::kHello) return on_hello(*in, p);

  // Any authenticated message proves the site is alive; one we have not heard Hello from (the
  // aggregator restarted under it) joins with an unknown dataset summary until it says Hello.
  auto it = live_.find(id);
  if (it == live_.end()) {
    try {
      state_.sites.register_site(id, fingerprint_of(id));
    } catch (const Error& e) {
      return reply_error(*in, proto::ErrorCode::kUnauthorized, e.what());
    }
    it = live_.emplace(id, LiveSite{}).first;
    spdlog::info("site {} is back (no Hello yet)", id);
  }
  it->second.peer = in->peer;
  it->second.last_seen = Clock::now();

  switch (type) {
    case proto::MessageType::kHeartbeat:
      it->second.status = std::get<proto::Heartbeat>(in->envelope.payload).status;
      return;
    case proto::MessageType::kUpdate:
      return on_update(*in, p);
    case proto::MessageType::kEvalResult:
      return on_eval_result(*in, p);
    case proto::MessageType::kError: {
      const auto& e = std::get<proto::ErrorMessage>(in->envelope.payload);
      spdlog::warn("site {} reports an error ({}): {}", id, proto::to_string(e.code), e.message);
      // A site that could not train this round's Task will send no Update for it: stop waiting
      // for it (the round completes with the others or is retried) instead of timing out.
      if (p && !p->evaluating && static_cast<std::int64_t>(in->envelope.round) == p->round &&
          p->asked.count(id) && p->answered.insert(id).second)
        p->record.rejected.push_back({id, "site_error", e.message});
      return;
    }
    case proto::MessageType::kBye:
      spdlog::info("site {} left: {}", id, std::get<proto::Bye>(in->envelope.payload).reason);
      live_.erase(it);
      sites_changed_ = true;
      return;
    default:
      return reply_error(*in, proto::ErrorCode::kUnexpected,
                         std::string("a site does not send ") + proto::to_string(type) +
                             " messages; only Hello, Heartbeat, Update, EvalResult, Error, Bye");
  }
}

void Aggregator::on_hello(const proto::Received& in, RoundProgress* p) {
  const auto& hello = std::get<proto::Hello>(in.envelope.payload);
  if (hello.site_id != in.site_id)
    return reply_error(in, proto::ErrorCode::kUnauthorized,
                       "Hello names site '" + hello.site_id + "' but the connection is '" +
                           in.site_id + "'");
  try {
    state_.sites.register_site(in.site_id, fingerprint_of(in.site_id));
  } catch (const Error& e) {
    spdlog::error("site {} refused: {}", in.site_id, e.what());
    return reply_error(in, proto::ErrorCode::kUnauthorized, e.what());
  }
  sites_changed_ = true;
  LiveSite& site = live_[in.site_id];
  const bool reconnect = site.said_hello || site.last_seen.time_since_epoch().count() != 0;
  site.peer = in.peer;
  site.hello = hello;
  site.said_hello = true;
  site.status = "idle";
  site.last_seen = Clock::now();
  const auto& d = hello.dataset;
  spdlog::info("site {} {}: {} images, {} identities, {} cameras, de-identified with {}{}",
               in.site_id, reconnect ? "reconnected" : "joined", d.images, d.identities,
               d.cameras, d.deid_method.empty() ? "?" : d.deid_method,
               d.epsilon ? fmt::format(" (epsilon {})", *d.epsilon) : std::string());
  // A site asked in this round that reconnects lost its Task with its old connection.
  if (p && !p->evaluating && p->task && p->asked.count(in.site_id) &&
      !p->answered.count(in.site_id)) {
    if (server_->send(in.peer, p->round, *p->task))
      spdlog::info("round {}: Task sent again to {} after its reconnect", p->round, in.site_id);
  }
}

void Aggregator::on_update(proto::Received& in, RoundProgress* p) {
  auto& update = std::get<proto::Update>(in.envelope.payload);
  const std::int64_t claimed = static_cast<std::int64_t>(in.envelope.round);
  if (!p || p->evaluating) {
    spdlog::warn("update from {} for round {} arrived while no round collects updates; ignored",
                 in.site_id, claimed);
    return reply_error(in, proto::ErrorCode::kRejected,
                       "no round is collecting updates now (the update claims round " +
                           std::to_string(claimed) + ")");
  }
  ModelUpdate mu;
  mu.site = in.site_id;
  mu.round = in.envelope.round > static_cast<std::uint64_t>(INT64_MAX) ? -1 : claimed;
  mu.samples = update.sample_count > static_cast<std::uint64_t>(INT64_MAX)
                   ? -1
                   : static_cast<std::int64_t>(update.sample_count);
  mu.kind = update.is_delta ? UpdateKind::kDelta : UpdateKind::kWeights;
  try {
    mu.tensors = proto::from_wire(update.weights);
  } catch (const Error& e) {
    return reply_error(in, proto::ErrorCode::kMalformed, e.what());
  }
  update.weights.clear();  // the wire copy is no longer needed; halves the peak memory
  if (auto rejection = validator_.admit(mu)) {
    const std::string reason(to_string(rejection->reason));
    // A late answer to an earlier round is not this round's answer.
    if (rejection->reason != RejectReason::kStaleRound &&
        rejection->reason != RejectReason::kFutureRound &&
        rejection->reason != RejectReason::kUnexpectedSite)
      p->answered.insert(in.site_id);
    p->record.rejected.push_back({in.site_id, reason, rejection->detail});
    spdlog::warn("round {}: update from {} rejected ({}): {}", p->round, in.site_id, reason,
                 rejection->detail);
    return reply_error(in, proto::ErrorCode::kRejected, reason + ": " + rejection->detail);
  }
  strategy_->add(mu);
  p->answered.insert(in.site_id);
  p->record.accepted[in.site_id] = mu.samples;
  auto loss = update.metrics.find("loss");
  if (loss != update.metrics.end() && std::isfinite(loss->second)) {
    p->loss_weighted += loss->second * static_cast<double>(mu.samples);
    p->loss_samples += mu.samples;
  }
  spdlog::info("round {}: update from {} accepted ({} samples{}); {} of {}", p->round, in.site_id,
               mu.samples,
               loss != update.metrics.end() ? fmt::format(", loss {:.4f}", loss->second) : "",
               p->record.accepted.size(), p->asked.size());
}

void Aggregator::on_eval_result(const proto::Received& in, RoundProgress* p) {
  if (!p || !p->evaluating || static_cast<std::int64_t>(in.envelope.round) != p->round) {
    spdlog::info("late evaluation from {} for round {} ignored", in.site_id, in.envelope.round);
    return;
  }
  p->eval_results[in.site_id] = std::get<proto::EvalResult>(in.envelope.payload);
  p->evaluated.insert(in.site_id);
}

void Aggregator::reply_error(const proto::Received& in, proto::ErrorCode code,
                             const std::string& message) {
  server_->send(in.peer, in.envelope.round, proto::ErrorMessage{code, message});
}

void Aggregator::expire_silent_sites() {
  for (auto it = live_.begin(); it != live_.end();) {
    double silent = seconds_since(it->second.last_seen);
    if (silent * 1000.0 > static_cast<double>(config_.site_timeout.count())) {
      spdlog::warn("site {} silent for {:.1f} s (site_timeout {:.1f} s); no longer counted as "
                   "live",
                   it->first, silent, config_.site_timeout.count() / 1000.0);
      it = live_.erase(it);
      sites_changed_ = true;
    } else {
      ++it;
    }
  }
}

std::vector<std::string> Aggregator::live_ids() const {
  std::vector<std::string> ids;
  for (const auto& [id, site] : live_) ids.push_back(id);
  return ids;
}

void Aggregator::say_bye_to_all(const std::string& reason) {
  std::vector<proto::Peer> peers;
  for (const auto& [id, site] : live_) peers.push_back(site.peer);
  if (!peers.empty()) server_->send_to_all(peers, static_cast<std::uint64_t>(state_.round),
                                           proto::Bye{reason});
}

std::string Aggregator::fingerprint_of(const std::string& site_id) const {
  if (config_.security == proto::Security::kInsecure) return "insecure:" + site_id;
  // The ZAP handler admitted the connection with the key of allow_list/SITE_ID.pub.
  const fs::path pub = config_.allow_list / (site_id + ".pub");
  std::string key = util::read_file(pub);
  while (!key.empty() && std::isspace(static_cast<unsigned char>(key.back()))) key.pop_back();
  return util::sha256_hex(key);
}

void Aggregator::write_status(const std::string& phase, const RoundProgress* p) {
  nlohmann::json sites = nlohmann::json::array();
  for (const auto& [id, s] : live_)
    sites.push_back({{"id", id},
                     {"status", s.status},
                     {"images", s.hello.dataset.images},
                     {"identities", s.hello.dataset.identities},
                     {"cameras", s.hello.dataset.cameras},
                     {"deid_method", s.hello.dataset.deid_method},
                     {"last_seen_seconds_ago", seconds_since(s.last_seen)}});
  nlohmann::json j = {{"federation_id", config_.federation_id},
                      {"endpoint", server_ ? server_->endpoint() : config_.listen},
                      {"phase", phase},
                      {"round", p ? p->round : state_.round},
                      {"completed_rounds", state_.round},
                      {"rounds", config_.rounds},
                      {"strategy", std::string(to_string(config_.strategy.kind))},
                      {"min_sites", config_.min_sites},
                      {"min_updates", config_.min_updates},
                      {"sites", sites}};
  if (p)
    j["progress"] = {{"attempt", p->attempt},
                     {"asked", p->asked.size()},
                     {"accepted", p->record.accepted.size()},
                     {"rejected", p->record.rejected.size()},
                     {"evaluations", p->eval_results.size()}};
  const bool changed = phase != last_phase_ || sites_changed_;
  last_phase_ = phase;
  sites_changed_ = false;
  status_.write(std::move(j), changed);
}

}  // namespace ppreid::agg
