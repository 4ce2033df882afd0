#include "aggregator/aggregator.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "aggregator/aggregator_internal.h"
#include "core/data/dataset.h"
#include "core/reid/features.h"
#include "core/reid/model.h"
#include "protocols/torch_wire.h"

// One round of the daemon (sample, Task, collect, aggregate, checkpoint) and its evaluation.

namespace ppreid::agg {
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

template <class Set>
std::vector<std::string> to_vector(const Set& s) {
  return {s.begin(), s.end()};
}

}  // namespace

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

  if (std::string problem = config_.strategy.count_problem(p.asked.size()); !problem.empty()) {
    // sites_per_round asked fewer sites than the strategy needs: no Task could help.
    last_round_problem_ = problem;
    p.record.outcome = "retry";
    metrics_.append(p.record.to_json());
    spdlog::error("round {} attempt {} not started: {} (of {} live); waiting for more sites or "
                  "change sites.per_round",
                  r, attempt, problem, live_count);
    serve_until(Clock::now() + detail::kPollSlice * 5, {}, {}, "waiting_for_sites", p, stop);
    return false;
  }
  validator_.begin_round(r, state_.global, p.asked);
  guard_.begin_round(state_.global);
  strategy_->begin_round(state_.global);
  proto::Task task;
  task.weights = proto::to_wire(state_.global);
  task.settings = config_.task;
  task.settings.fedprox_mu = strategy_->task_settings().value("proximal_mu", 0.0);
  if (config_.secure_aggregation.enabled) {
    const SecureAggregationConfig& sa = config_.secure_aggregation;
    std::uint64_t largest = 0;
    for (const auto& id : p.asked) largest = std::max(largest, live_.at(id).hello.dataset.images);
    const secagg::Params params = sa.params_for(p.asked.size(), largest);
    std::size_t values = 0;
    for (const auto& [name, t] : state_.global) values += static_cast<std::size_t>(t.numel());
    secagg::ServerOptions options;
    options.neighbours = sa.neighbours_for(p.asked.size());
    options.threshold = sa.threshold.value_or(0);
    options.min_sites = config_.min_updates;
    options.graph_seed = rng();
    p.secure = std::make_unique<secagg::ServerSession>(
        secagg::RoundContext{config_.federation_id, static_cast<std::uint64_t>(r)}, params,
        p.asked, values, options);
    task.secure_aggregation = params;
    p.record.secure = {{"modulus_bits", params.modulus_bits},
                       {"quantization_range", params.quantization_range},
                       {"clipping_range", params.clipping_range},
                       {"max_weight", params.max_weight},
                       {"clip_norm", params.clip_norm},
                       {"neighbours", options.neighbours}};
  }
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
               detail::join(p.record.sites_asked));
  write_status("training", &p);

  std::string secure_failure;
  if (p.secure) {
    secure_failure = run_secure_stages(p, round_start, stop);
  } else {
    serve_until(round_start + config_.round_timeout, p.asked, p.answered, "training", p, stop);
    for (const auto& id : p.asked)
      if (!p.answered.count(id) && !p.refusals.count(id)) p.record.silent.push_back(id);
    close_round(p);
  }

  auto finish_record = [&](const char* outcome) {
    const auto& after = server_->stats();
    p.record.outcome = outcome;
    p.record.seconds = detail::seconds_since(round_start);
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
  if (!secure_failure.empty()) {
    strategy_->abandon();
    p.record.secure["failure"] = secure_failure;
    last_round_problem_ = secure_failure;
    finish_record("retry");
    metrics_.append(p.record.to_json());
    spdlog::warn("round {} attempt {}: {}; retrying the round", r, attempt, secure_failure);
    return false;
  }
  if (p.secure_sum) strategy_->add(secure_update(p));
  if (p.record.accepted.size() < config_.min_updates) {
    strategy_->abandon();
    last_round_problem_ = std::to_string(p.record.accepted.size()) + " valid update(s), " +
                          std::to_string(config_.min_updates) + " needed";
    finish_record("retry");
    metrics_.append(p.record.to_json());
    spdlog::warn("round {} attempt {}: {} valid update(s), {} needed (silent: {}; rejected: {}); "
                 "retrying the round",
                 r, attempt, p.record.accepted.size(), config_.min_updates,
                 detail::join(p.record.silent), p.record.rejected.size());
    return false;
  }

  const auto agg_start = Clock::now();
  NamedTensors next = strategy_->finish();
  p.record.aggregation_seconds = detail::seconds_since(agg_start);
  p.record.strategy_report = strategy_->round_report();
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
               r, p.record.accepted.size(), detail::join(accepted_ids),
               p.record.to_json()["samples"].get<std::int64_t>(), to_string(strategy_->kind()),
               p.record.aggregation_seconds);

  std::set<std::string> contributors;
  for (const auto& [site, n] : p.record.accepted) contributors.insert(site);
  evaluate(p, contributors, stop);
  metrics_.replace_last(p.record.to_json());
  if (hooks_.on_round) hooks_.on_round(p.record, state_);
  return true;
}

void Aggregator::close_round(RoundProgress& p) {
  // Held updates meet the round's relative norm bound and the share cap, then the strategy.
  for (ModelUpdate& u : guard_.close()) {
    p.record.accepted[u.site] = u.samples;
    strategy_->add(u);
  }
  for (const Rejection& late : guard_.refusals()) {
    p.record.accepted.erase(late.site);
    const std::string reason(to_string(late.reason));
    p.record.rejected.push_back({late.site, reason, late.detail});
    spdlog::warn("round {}: update from {} refused when the round closed ({}): {}", p.round,
                 late.site, reason, late.detail);
  }
  p.record.guard = guard_.record();
  const auto& clipped = p.record.guard["clipped"];
  const auto& capped = p.record.guard["capped"];
  for (const auto& [site, norm] : clipped.items())
    spdlog::warn("round {}: update from {} clipped from norm {:.4g} to the bound {:.4g}", p.round,
                 site, norm.get<double>(), p.record.guard.value("bound", 0.0));
  for (const auto& [site, c] : capped.items())
    spdlog::warn("round {}: sample count of {} capped from {} to {} (by {})", p.round, site,
                 c["claimed"].get<std::int64_t>(), c["counted"].get<std::int64_t>(),
                 c["by"].get<std::string>());
  p.refused_at.clear();  // the resend grace ends with the round
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
    nlohmann::json metrics = reid::evaluate_model(
        model, *eval_data_, config_.model.profile.transform, config_.model.eval.metric, true, opts,
        nullptr, config_.model.eval.centroid_protocol);
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
  const auto grace = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(config_.validation.resend_grace_seconds));
  while (!stop && Clock::now() < deadline) {
    bool waiting = false;
    for (const auto& id : asked) {
      if (answered.count(id) || !live_.count(id)) continue;
      // A refused site may resend until the round closes, but the round waits for it only
      // during its grace.
      auto refused = p.refused_at.find(id);
      if (refused != p.refused_at.end() && Clock::now() - refused->second >= grace) continue;
      waiting = true;
    }
    if (!waiting) return;
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    poll(std::clamp(left, milliseconds(1), detail::kPollSlice), &p);
    expire_silent_sites();
    write_status(phase, &p);
  }
}

}  // namespace ppreid::agg
