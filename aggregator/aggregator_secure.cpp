#include "aggregator/aggregator.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "aggregator/aggregator_internal.h"

// Secure aggregation in the daemon: after training, the stages of docs/PROTOCOL.md (keys came
// with the end of training; then shares, masked updates, unmasking), each bounded by
// secure_aggregation.stage_timeout. The session (protocols/secagg) does the checks and the
// arithmetic; this file moves its messages and decides when a stage is over.

namespace ppreid::agg {
using Clock = std::chrono::steady_clock;

namespace {

template <class Map>
std::set<std::string> keys_of(const Map& m) {
  std::set<std::string> out;
  for (const auto& [k, v] : m) out.insert(k);
  return out;
}

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

std::string Aggregator::run_secure_stages(RoundProgress& p, Clock::time_point round_start,
                                          const std::atomic<bool>& stop) {
  secagg::ServerSession& session = *p.secure;
  nlohmann::json& rec = p.record.secure;
  auto send_each = [&](const auto& messages) {
    for (const auto& [id, message] : messages) {
      auto live = live_.find(id);
      if (live == live_.end() || !server_->send(live->second.peer, p.round, message))
        spdlog::warn("round {}: secure aggregation message to {} not delivered", p.round, id);
    }
  };
  auto stage = [&](const char* name, const std::set<std::string>& asked) {
    p.answered.clear();
    const auto start = Clock::now();
    serve_until(start + config_.secure_aggregation.stage_timeout, asked, p.answered, name, p, stop);
    rec["stage_seconds"][name] = seconds_between(start, Clock::now());
  };
  // Training ends with each site's keys; the round's deadline bounds this stage.
  serve_until(round_start + config_.round_timeout, p.asked, p.answered, "training", p, stop);
  for (const auto& id : p.asked)
    if (!p.answered.count(id)) p.record.silent.push_back(id);
  if (stop) return "stop requested";
  try {
    const auto lists = session.close_keys();
    rec["threshold"] = session.threshold();
    rec["neighbourhood"] = session.neighbourhoods().begin()->second.size();
    send_each(lists);
    stage("secagg_shares", keys_of(lists));
    const auto share_lists = session.close_shares();
    send_each(share_lists);
    stage("secagg_masked", keys_of(share_lists));
    const auto requests = session.close_masked();
    send_each(requests);
    stage("secagg_unmask", keys_of(requests));
    if (stop) return "stop requested";
    const auto start = Clock::now();
    p.secure_sum = session.finish();
    rec["stage_seconds"]["unmask_compute"] = seconds_between(start, Clock::now());
  } catch (const secagg::RoundShortfall& e) {
    return e.what();
  } catch (const secagg::ProtocolError& e) {
    return std::string("secure aggregation failed: ") + e.what();
  }
  const secagg::SecureSum& sum = *p.secure_sum;
  rec["survivors"] = sum.survivors;
  rec["dropped"] = sum.dropped;
  rec["excluded"] = sum.excluded;
  rec["unshared"] = sum.unshared;
  // Sites that left during the stages sent no update the sum contains: silent, as in plain rounds.
  for (const auto* group : {&sum.dropped, &sum.unshared, &sum.excluded})
    for (const auto& id : *group) p.record.silent.push_back(id);
  rec["samples"] = sum.samples;
  for (const auto& id : sum.survivors) p.record.accepted[id] = 0;  // per site: not known
  if (std::isfinite(sum.mean_loss)) p.record.train_loss = sum.mean_loss;
  return {};
}

void Aggregator::on_secure_message(const proto::Received& in, RoundProgress* p) {
  const std::string& id = in.site_id;
  const proto::MessageType type = in.envelope.type();
  if (!p || !p->secure || p->evaluating || static_cast<std::int64_t>(in.envelope.round) != p->round)
    return reply_error(in, proto::ErrorCode::kRejected,
                       std::string(proto::to_string(type)) + " for round " +
                           std::to_string(in.envelope.round) +
                           ": no secure aggregation round is in progress for it");
  secagg::ServerSession& s = *p->secure;
  try {
    switch (type) {
      case proto::MessageType::kSecAggKeys:
        s.add_keys(id, std::get<proto::SecAggKeys>(in.envelope.payload));
        spdlog::info("round {}: {} finished training and sent its keys; {} of {}", p->round, id,
                     p->answered.size() + 1, p->asked.size());
        break;
      case proto::MessageType::kSecAggShares:
        s.add_shares(id, std::get<proto::SecAggShares>(in.envelope.payload));
        break;
      case proto::MessageType::kMaskedUpdate:
        s.add_masked(id, std::get<proto::MaskedUpdate>(in.envelope.payload));
        break;
      case proto::MessageType::kUnmaskShares:
        s.add_unmask(id, std::get<proto::UnmaskShares>(in.envelope.payload));
        break;
      default:
        return;
    }
  } catch (const secagg::ProtocolError& e) {
    spdlog::warn("round {}: {} from {} refused: {}", p->round, proto::to_string(type), id, e.what());
    p->record.rejected.push_back({id, "secure_aggregation", e.what()});
    p->answered.insert(id);  // the stage does not wait for it any longer
    return reply_error(in, proto::ErrorCode::kRejected, e.what());
  }
  p->answered.insert(id);
}

ModelUpdate Aggregator::secure_update(const RoundProgress& p) const {
  const secagg::SecureSum& sum = *p.secure_sum;
  ModelUpdate u;
  u.site = "secure-sum";
  u.round = p.round;
  u.samples = std::max<std::int64_t>(1, std::llround(sum.samples));
  u.kind = UpdateKind::kDelta;
  std::size_t offset = 0;
  for (const auto& [name, global] : state_.global) {
    const std::int64_t n = global.numel();
    torch::Tensor delta =
        torch::from_blob(const_cast<float*>(sum.mean.data()) + offset, {n}, torch::kFloat32)
            .to(torch::kFloat64);
    // Counters (num_batches_tracked) get the mean increase, rounded: Krum's maximum needs each
    // site's value, which the sum hides.
    if (!global.is_floating_point()) delta = delta.round();
    u.tensors.emplace_back(name, delta.to(global.scalar_type()).reshape(global.sizes()));
    offset += static_cast<std::size_t>(n);
  }
  return u;
}

}  // namespace ppreid::agg
