#include "client/site.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "client/site_internal.h"

// A site's side of secure aggregation (docs/PROTOCOL.md): after training it keeps its update
// here, flattened in the order of the Task's tensors, and answers each stage the aggregator
// drives with what secagg::SiteSession computes. The update itself never leaves unmasked.

namespace ppreid::client {

bool Site::send_logged(std::uint64_t round, proto::Payload payload, const char* what) {
  try {
    client_->send(round, std::move(payload));
    return true;
  } catch (const proto::HandshakeError&) {
    throw;
  } catch (const proto::TransportError& e) {
    spdlog::warn("{}round {}: {} not sent: {}", log_prefix(), round, what, e.what());
    return false;
  }
}

void Site::start_secure_round(std::uint64_t round, const reid::NamedTensors& shared,
                              double samples, double loss) {
  std::map<std::string, const torch::Tensor*> local;
  for (const auto& [name, t] : shared) local.emplace(name, &t);
  std::size_t values = 0;
  for (const auto& [name, g] : last_task_weights_) values += static_cast<std::size_t>(g.numel());
  secure_update_.assign(values, 0.f);
  std::size_t offset = 0;
  for (const auto& [name, g] : last_task_weights_) {
    // The change in float64 first: counters and weights near 1e3 keep their small differences.
    const torch::Tensor delta =
        (local.at(name)->to(torch::kFloat64) - g.to(torch::kFloat64)).to(torch::kFloat32).contiguous();
    std::memcpy(secure_update_.data() + offset, delta.data_ptr<float>(),
                static_cast<std::size_t>(delta.numel()) * sizeof(float));
    offset += static_cast<std::size_t>(delta.numel());
  }
  secure_samples_ = samples;
  secure_loss_ = loss;
  if (send_logged(round, secure_->keys(), "SecAggKeys"))
    spdlog::info("{}round {}: trained (loss {:.4f}); keys sent for secure aggregation",
                 log_prefix(), round, loss);
}

bool Site::on_secure_message(const proto::Envelope& env) {
  const proto::MessageType type = env.type();
  if (type != proto::MessageType::kSecAggKeyList && type != proto::MessageType::kSecAggShareList &&
      type != proto::MessageType::kUnmaskRequest)
    return false;
  if (!secure_ || secure_->round() != env.round) {
    spdlog::warn("{}{} for round {} ignored: this site is in no secure aggregation round for it",
                 log_prefix(), proto::to_string(type), env.round);
    return true;
  }
  const char* stage = type == proto::MessageType::kSecAggKeyList    ? "shares"
                      : type == proto::MessageType::kSecAggShareList ? "masked"
                                                                     : "unmask";
  if (hooks_.secure_stage && !hooks_.secure_stage(env.round, stage)) {
    spdlog::warn("{}round {}: vanishing before the {} stage (a fault hook)", log_prefix(),
                 env.round, stage);
    vanished_ = true;
    return true;
  }
  try {
    if (const auto* list = std::get_if<proto::SecAggKeyList>(&env.payload)) {
      send_logged(env.round, secure_->share_keys(*list), "SecAggShares");
    } else if (const auto* shares = std::get_if<proto::SecAggShareList>(&env.payload)) {
      proto::MaskedUpdate masked = secure_->mask(*shares, secure_update_, secure_samples_, secure_loss_);
      secure_update_ = {};  // masked now: the clear update is not kept
      if (send_logged(env.round, std::move(masked), "MaskedUpdate")) {
        ++stats_.secure_rounds;
        ++stats_.updates_sent;
        spdlog::info("{}round {}: masked update sent ({} neighbours hold shares of its secrets)",
                     log_prefix(), env.round, secure_->holders().size());
      }
    } else if (const auto* request = std::get_if<proto::UnmaskRequest>(&env.payload)) {
      send_logged(env.round, secure_->unmask(*request), "UnmaskShares");
      spdlog::info("{}round {}: unmask shares sent ({} survivors, {} dropped)", log_prefix(),
                   env.round, request->survivors.size(), request->dropped.size());
    }
  } catch (const secagg::ProtocolError& e) {
    ++stats_.secure_refusals;
    spdlog::error("{}round {}: secure aggregation stopped: {}", log_prefix(), env.round, e.what());
    send_logged(env.round,
                proto::ErrorMessage{proto::ErrorCode::kRejected, "site " + config_.site_id + ": " + e.what()},
                "Error");
    secure_.reset();
    secure_update_ = {};
  }
  return true;
}

}  // namespace ppreid::client
