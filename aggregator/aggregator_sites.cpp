#include "aggregator/aggregator.h"

#include <spdlog/spdlog.h>

#include <cctype>
#include <cmath>

#include "aggregator/aggregator_internal.h"
#include "core/util/atomic_file.h"
#include "core/util/error.h"
#include "core/util/sha256.h"
#include "protocols/torch_wire.h"

// The daemon's side of the sites: dispatching their messages, the live-site table, Bye to all
// and status.json.

namespace ppreid::agg {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

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
    case proto::MessageType::kSecAggKeys:
    case proto::MessageType::kSecAggShares:
    case proto::MessageType::kMaskedUpdate:
    case proto::MessageType::kUnmaskShares:
      return on_secure_message(*in, p);
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
                             " messages; only Hello, Heartbeat, Update, EvalResult, Error, Bye "
                             "and the secure aggregation messages SecAggKeys, SecAggShares, "
                             "MaskedUpdate, UnmaskShares");
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
  // Under secure aggregation only while the round still waits for keys: later stages have
  // moved on without it.
  const bool collecting = !p || !p->secure || p->secure->stage() == secagg::ServerSession::Stage::kKeys;
  if (p && !p->evaluating && p->task && collecting && p->asked.count(in.site_id) &&
      !p->answered.count(in.site_id)) {
    if (server_->send(in.peer, p->round, *p->task))
      spdlog::info("round {}: Task sent again to {} after its reconnect", p->round, in.site_id);
  }
}

void Aggregator::on_update(proto::Received& in, RoundProgress* p) {
  auto& update = std::get<proto::Update>(in.envelope.payload);
  const std::int64_t claimed = static_cast<std::int64_t>(in.envelope.round);
  if (p && p->secure)
    return reply_error(in, proto::ErrorCode::kRejected,
                       "round " + std::to_string(p->round) +
                           " uses secure aggregation: a clear Update is refused (answer the "
                           "Task with SecAggKeys; update this site's ppreid)");
  if (!p || p->evaluating) {
    spdlog::warn("update from {} for round {} arrived while no round collects updates; ignored",
                 in.site_id, claimed);
    return reply_error(in, proto::ErrorCode::kRejected,
                       "no round is collecting updates now (the update claims round " +
                           std::to_string(claimed) + ")");
  }
  const int max_refusals = config_.validation.max_refusals;
  if (auto r = p->refusals.find(in.site_id); r != p->refusals.end() && r->second >= max_refusals)
    return reply_error(in, proto::ErrorCode::kRejected,
                       std::string(to_string(RejectReason::kTooManyRefusals)) + ": " +
                           std::to_string(max_refusals) + " updates of site '" + in.site_id +
                           "' were refused in round " + std::to_string(p->round) +
                           "; it is not heard again until the next round");
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
  std::optional<Rejection> rejection = validator_.admit(mu);
  std::optional<ModelUpdate> ready;
  if (!rejection) {
    const LiveSite& site = live_.at(in.site_id);
    std::optional<std::int64_t> declared;
    if (site.said_hello && site.hello.dataset.images <= static_cast<std::uint64_t>(INT64_MAX))
      declared = static_cast<std::int64_t>(site.hello.dataset.images);
    ready = guard_.admit(std::move(mu), declared);
    rejection = guard_.refused();
  }
  if (rejection) {
    const std::string reason(to_string(rejection->reason));
    // A late answer to an earlier round is not this round's answer. Any other refusal leaves
    // the door open: the site may send a valid update until the round closes (the round waits
    // resend_grace for it), up to max_refusals times.
    if (rejection->reason != RejectReason::kStaleRound &&
        rejection->reason != RejectReason::kFutureRound &&
        rejection->reason != RejectReason::kUnexpectedSite) {
      const int refusals = ++p->refusals[in.site_id];
      p->refused_at[in.site_id] = Clock::now();
      if (refusals >= max_refusals || config_.validation.resend_grace_seconds <= 0)
        p->answered.insert(in.site_id);
    }
    p->record.rejected.push_back({in.site_id, reason, rejection->detail});
    spdlog::warn("round {}: update from {} rejected ({}): {}", p->round, in.site_id, reason,
                 rejection->detail);
    const bool may_resend = !p->answered.count(in.site_id) && p->refusals.count(in.site_id);
    return reply_error(in, proto::ErrorCode::kRejected,
                       reason + ": " + rejection->detail +
                           (may_resend ? "; a valid update is still accepted until the round closes"
                                       : ""));
  }
  const std::int64_t samples = ready ? ready->samples : guard_.last_counted();
  if (ready) strategy_->add(*ready);
  p->refused_at.erase(in.site_id);
  p->answered.insert(in.site_id);
  p->record.accepted[in.site_id] = samples;
  auto loss = update.metrics.find("loss");
  if (loss != update.metrics.end() && std::isfinite(loss->second)) {
    p->loss_weighted += loss->second * static_cast<double>(samples);
    p->loss_samples += samples;
  }
  spdlog::info("round {}: update from {} accepted ({} samples{}); {} of {}", p->round, in.site_id,
               samples,
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
    double silent = detail::seconds_since(it->second.last_seen);
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
                     {"last_seen_seconds_ago", detail::seconds_since(s.last_seen)}});
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
