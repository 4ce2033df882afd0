#include "simulations/replay.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>

#include "core/attacks/attack_images.h"
#include "core/quality/image_quality.h"
#include "core/util/error.h"
#include "protocols/secagg/quantize.h"
#include "protocols/secagg/server_session.h"
#include "protocols/torch_wire.h"
#include "protocols/transport.h"

namespace ppreid::sim {
namespace fs = std::filesystem;
namespace {

constexpr double kMaxPsnr = 100.0;  // dB; JSON has no infinity
const double kThresholds[] = {1e-2, 1e-3, 1e-4};

std::string threshold_key(double t) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.0e", t);
  return buf;
}

nlohmann::json rates_json(const std::map<double, double>& rates) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [t, r] : rates) j[threshold_key(t)] = r;
  return j;
}

std::string file_stem(const std::string& name) {
  std::string out;
  for (char c : name) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '-') ? c : '_';
  return out.empty() ? "image" : out;
}

// What the site computes from the global weights and its one de-identified image: FedSGD, the
// gradient; FedAvg, the weights after local_steps plain SGD steps.
std::vector<torch::Tensor> site_share(const attacks::AttackModel& site, const torch::Tensor& image,
                                      std::int64_t label, const ReplayOptions& o) {
  if (o.mode == ReplayMode::kFedSgd)
    return attacks::shared_gradient(site.gradient_model, image, label);
  for (int step = 0; step < o.local_steps; ++step) {
    const auto grads = attacks::shared_gradient(site.gradient_model, image, label);
    torch::NoGradGuard no_grad;
    for (std::size_t k = 0; k < grads.size(); ++k)
      site.gradient_model.parameters[k].sub_(grads[k], o.local_lr);
  }
  std::vector<torch::Tensor> weights;
  for (const auto& p : site.gradient_model.parameters) weights.push_back(p.detach().clone());
  return weights;
}

// The received tensors in the model's parameter order; the update must carry exactly them.
std::vector<torch::Tensor> in_model_order(const proto::NamedTensors& received,
                                          const attacks::AttackModel& model) {
  std::map<std::string, torch::Tensor> by_name(received.begin(), received.end());
  if (by_name.size() != model.names.size())
    throw Error("replay: the update carries " + std::to_string(by_name.size()) +
                " tensors, the attack model has " + std::to_string(model.names.size()) +
                " parameters");
  std::vector<torch::Tensor> out;
  for (const auto& name : model.names) {
    auto it = by_name.find(name);
    if (it == by_name.end())
      throw Error("replay: the update has no tensor '" + name + "' of the attack model");
    out.push_back(it->second);
  }
  return out;
}

double capped_psnr(double mse) { return std::min(kMaxPsnr, attacks::psnr_from_mse(mse)); }

// Sends the share from the site's Client to the aggregator's Server and returns what the Server
// decoded, plus the message's size on the wire.
std::pair<proto::NamedTensors, std::size_t> transmit(proto::Client& client, proto::Server& server,
                                                     std::uint64_t round,
                                                     const attacks::AttackModel& site,
                                                     const std::vector<torch::Tensor>& share,
                                                     ReplayMode mode) {
  proto::NamedTensors named;
  for (std::size_t k = 0; k < share.size(); ++k) named.emplace_back(site.names[k], share[k]);
  proto::Update update;
  update.weights = proto::to_wire(named);
  update.is_delta = mode == ReplayMode::kFedSgd;  // a gradient, not weights
  update.sample_count = 1;
  client.send(round, update);
  for (;;) {
    auto got = server.receive(std::chrono::seconds(30));
    if (!got)
      throw Error("replay: the aggregator side received nothing within 30 s over loopback; "
                  "check that nothing else holds the loopback ports and that the keys belong "
                  "together");
    if (got->envelope.round != round || got->envelope.type() != proto::MessageType::kUpdate)
      continue;  // e.g. a leftover of an earlier attack
    const proto::NamedWireTensors* t = proto::tensors_of(got->envelope.payload);
    return {proto::from_wire(*t), got->wire_bytes};
  }
}

// Secure aggregation of the victim's change (share - base) with the changes of the other sites:
// the victim's MaskedUpdate goes over the real transport and the attacker gets, in the model's
// order, either that message dequantized as if unmasked, or the unmasked mean; `base` is added
// back. Returns the tensors and the masked message's size on the wire.
std::pair<std::vector<torch::Tensor>, std::size_t> transmit_secure(
    proto::Client& client, proto::Server& server, std::uint64_t round,
    const std::vector<std::vector<torch::Tensor>>& changes, const std::vector<torch::Tensor>& base,
    ReplaySecure secure) {
  const std::size_t n = changes.size();
  std::vector<std::string> ids;
  for (std::size_t j = 0; j < n; ++j) ids.push_back(j == 0 ? client.options().site_id : "peer-" + std::to_string(j));
  secagg::Params params;
  params.max_weight = 1;  // every site trained on one image
  params.sites = static_cast<std::uint32_t>(n);
  std::size_t values = 0;
  for (const auto& t : base) values += static_cast<std::size_t>(t.numel());
  const secagg::RoundContext ctx{"replay", round};
  secagg::ServerSession server_session(ctx, params, {ids.begin(), ids.end()}, values, {});
  std::vector<std::unique_ptr<secagg::SiteSession>> sites;
  for (const auto& id : ids) {
    sites.push_back(std::make_unique<secagg::SiteSession>(ctx, id, params, n));
    server_session.add_keys(id, sites.back()->keys());
  }
  for (auto& [id, list] : server_session.close_keys())
    server_session.add_shares(id, sites[std::find(ids.begin(), ids.end(), id) - ids.begin()]->share_keys(list));
  auto lists = server_session.close_shares();
  std::size_t wire_bytes = 0;
  std::vector<float> masked_as_values;
  for (std::size_t j = 0; j < n; ++j) {
    std::vector<float> flat;
    for (const auto& t : changes[j]) {
      const torch::Tensor c = t.detach().to(torch::kFloat32).contiguous().flatten();
      flat.insert(flat.end(), c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
    }
    proto::MaskedUpdate masked = sites[j]->mask(lists.at(ids[j]), flat, 1.0, 0.0);
    if (j > 0) {
      server_session.add_masked(ids[j], masked);
      continue;
    }
    client.send(round, masked);
    for (;;) {
      auto got = server.receive(std::chrono::seconds(30));
      if (!got) throw Error("replay: the aggregator side received no MaskedUpdate within 30 s");
      if (got->envelope.round != round || got->envelope.type() != proto::MessageType::kMaskedUpdate)
        continue;
      wire_bytes = got->wire_bytes;
      const auto& received = std::get<proto::MaskedUpdate>(got->envelope.payload);
      server_session.add_masked(ids[0], received);
      // What one message gives: its words read as the clear quantized update of weight 1.
      const auto& bytes = received.words.at(0).data;
      const auto* words = reinterpret_cast<const std::uint32_t*>(bytes.data());
      for (std::size_t v = 0; v < values; ++v)
        masked_as_values.push_back(static_cast<float>(
            secagg::dequantize_mean(words[secagg::kExtraWords + v], 1, params.quantization_range, params)));
      break;
    }
  }
  std::vector<float> result = masked_as_values;
  if (secure == ReplaySecure::kSum) {
    for (auto& [id, request] : server_session.close_masked())
      server_session.add_unmask(id, sites[std::find(ids.begin(), ids.end(), id) - ids.begin()]->unmask(request));
    const secagg::SecureSum sum = server_session.finish();
    result.assign(sum.mean.begin(), sum.mean.end());
  }
  std::vector<torch::Tensor> out;
  std::size_t offset = 0;
  for (const auto& t : base) {
    torch::Tensor v = torch::from_blob(result.data() + offset, {t.numel()}, torch::kFloat32).clone();
    out.push_back(v.reshape(t.sizes()).to(t.scalar_type()) + t.detach());
    offset += static_cast<std::size_t>(t.numel());
  }
  return {out, wire_bytes};
}

}  // namespace

ReplaySecure parse_replay_secure(const std::string& name) {
  if (name == "off") return ReplaySecure::kOff;
  if (name == "masked") return ReplaySecure::kMasked;
  if (name == "sum") return ReplaySecure::kSum;
  throw Error("replay secure_aggregation '" + name + "': use off, masked or sum");
}

const char* to_string(ReplaySecure secure) {
  switch (secure) {
    case ReplaySecure::kOff: return "off";
    case ReplaySecure::kMasked: return "masked";
    case ReplaySecure::kSum: return "sum";
  }
  return "?";
}

ReplayMode parse_replay_mode(const std::string& name) {
  if (name == "fedsgd") return ReplayMode::kFedSgd;
  if (name == "fedavg") return ReplayMode::kFedAvg;
  throw Error("replay mode '" + name + "': use fedsgd or fedavg");
}

const char* to_string(ReplayMode mode) {
  return mode == ReplayMode::kFedSgd ? "fedsgd" : "fedavg";
}

nlohmann::json AttackRecord::to_json() const {
  nlohmann::json j = {{"name", name},
                      {"label", label},
                      {"inferred_label", inferred_label},
                      {"label_correct", label_correct},
                      {"mse_raw", mse_raw},
                      {"psnr_raw", psnr_raw},
                      {"ssim_raw", ssim_raw},
                      {"mse_deid", mse_deid},
                      {"psnr_deid", psnr_deid},
                      {"ssim_deid", ssim_deid},
                      {"iterations", iterations},
                      {"distance", distance},
                      {"wire_bytes", wire_bytes},
                      {"seconds", seconds}};
  if (!strip.empty()) j["strip"] = strip.filename().string();
  return j;
}

nlohmann::json ReplaySummary::to_json(const ReplayOptions& o) const {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& a : attacks) list.push_back(a.to_json());
  return {{"model", o.model.model == "reid" ? "reid/" + o.model.arch : o.model.model},
          {"input", std::to_string(o.model.height) + "x" + std::to_string(o.model.width)},
          {"method", o.method == attacks::InversionMethod::kIdlg ? "idlg" : "dlg"},
          {"mode", to_string(o.mode)},
          {"secure_aggregation", to_string(o.secure)},
          {"secure_sites", o.secure == ReplaySecure::kOff ? 1 : o.secure_sites},
          {"iterations", o.iterations},
          {"seed", o.seed},
          {"attacks", list},
          {"label_accuracy", label_accuracy},
          {"success_raw", rates_json(success_raw)},
          {"success_deid", rates_json(success_deid)},
          {"mean_mse_raw", mean_mse_raw},
          {"mean_mse_deid", mean_mse_deid},
          {"mean_psnr_raw", mean_psnr_raw},
          {"mean_psnr_deid", mean_psnr_deid},
          {"mean_ssim_raw", mean_ssim_raw},
          {"mean_ssim_deid", mean_ssim_deid}};
}

ReplaySummary replay_gradient_attacks(const std::vector<ReplayTarget>& targets,
                                      const ReplayKeys& keys, const ReplayOptions& o) {
  if (targets.empty()) throw Error("replay: no images to attack");
  if (o.iterations < 1) throw Error("replay: iterations must be >= 1");
  if (o.secure != ReplaySecure::kOff && o.secure_sites < 2)
    throw Error("replay: secure aggregation needs secure_sites >= 2 (the victim and others)");
  if (o.mode == ReplayMode::kFedAvg && (o.local_steps < 1 || !(o.local_lr > 0)))
    throw Error("replay: FedAvg needs local_steps >= 1 and local_lr > 0");
  // Validates the model options before any socket is opened.
  const std::vector<std::int64_t> shape = attacks::make_attack_model(o.model).input_shape;
  const int h = static_cast<int>(shape[2]), w = static_cast<int>(shape[3]);

  struct ThreadsGuard {
    int saved = at::get_num_threads();
    explicit ThreadsGuard(int n) { at::set_num_threads(n > 0 ? n : saved); }
    ~ThreadsGuard() { at::set_num_threads(saved); }
  } threads_guard(o.threads);

  proto::ServerOptions so;
  so.federation_id = "replay";
  so.secret_key_file = keys.aggregator_secret_key;
  so.allow_list_dir = keys.allow_list_dir;
  proto::Server server(so);
  proto::ClientOptions co;
  co.endpoint = server.endpoint();
  co.site_id = keys.site_id;
  co.federation_id = "replay";
  co.secret_key_file = keys.site_secret_key;
  co.server_public_key_file = keys.aggregator_public_key;
  proto::Client client(co);
  if (!o.strip_dir.empty()) fs::create_directories(o.strip_dir);

  ReplaySummary s;
  for (std::size_t i = 0; i < targets.size(); ++i) {
    const ReplayTarget& t = targets[i];
    const auto started = std::chrono::steady_clock::now();
    const torch::Tensor raw = attacks::load_attack_image(t.raw_image, h, w);
    const torch::Tensor deid = attacks::load_attack_image(t.deid_image, h, w);
    AttackRecord r;
    r.name = t.name;
    r.label = t.label % o.model.classes;

    // The global model of this round, as both ends hold it (white box).
    attacks::AttackModelOptions mo = o.model;
    mo.seed = o.seed + i;
    const attacks::AttackModel site = attacks::make_attack_model(mo);
    const attacks::AttackModel attacker = attacks::make_attack_model(mo);

    std::vector<torch::Tensor> shared;
    if (o.secure == ReplaySecure::kOff) {
      const auto [received, bytes] =
          transmit(client, server, i + 1, site, site_share(site, deid, r.label, o), o.mode);
      r.wire_bytes = bytes;
      shared = in_model_order(received, attacker);
    } else {
      // The other sites train on the next targets' images with the same round model. FedAvg
      // shares are weights: their change from the global weights is what gets masked.
      std::vector<torch::Tensor> base;
      for (const auto& p : site.gradient_model.parameters)
        base.push_back(o.mode == ReplayMode::kFedAvg ? p.detach().clone() : torch::zeros_like(p));
      std::vector<std::vector<torch::Tensor>> changes;
      for (int j = 0; j < o.secure_sites; ++j) {
        const ReplayTarget& other = targets[(i + static_cast<std::size_t>(j)) % targets.size()];
        const torch::Tensor image =
            j == 0 ? deid : attacks::load_attack_image(other.deid_image, h, w);
        const attacks::AttackModel peer = attacks::make_attack_model(mo);  // same weights
        std::vector<torch::Tensor> share = site_share(peer, image, (other.label + j) % o.model.classes, o);
        for (std::size_t k = 0; k < share.size(); ++k) share[k] = share[k] - base[k];
        changes.push_back(std::move(share));
      }
      auto [received, bytes] = transmit_secure(client, server, i + 1, changes, base, o.secure);
      r.wire_bytes = bytes;
      shared = std::move(received);
    }
    if (o.mode == ReplayMode::kFedAvg) {
      // The average gradient of the local steps: (before - after) / (lr * steps).
      const double scale = 1.0 / (o.local_lr * o.local_steps);
      for (std::size_t k = 0; k < shared.size(); ++k)
        shared[k] = (attacker.gradient_model.parameters[k].detach() - shared[k]) * scale;
    }
    if (o.on_received) o.on_received(shared);

    attacks::InversionOptions io;
    io.method = o.method;
    io.iterations = o.iterations;
    io.seed = o.seed + 100003 + i;
    io.snapshots = o.snapshots;
    const attacks::InversionResult inv = attacks::invert_gradient(
        attacker.gradient_model, shared, shape, o.model.classes, io);
    const torch::Tensor rec = inv.image.detach().clamp(0, 1);
    r.inferred_label = inv.label;
    r.label_correct = inv.label == r.label;
    r.iterations = inv.iterations;
    r.distance = inv.distance;
    r.mse_raw = attacks::mse(rec, raw);
    r.mse_deid = attacks::mse(rec, deid);
    r.psnr_raw = capped_psnr(r.mse_raw);
    r.psnr_deid = capped_psnr(r.mse_deid);
    const cv::Mat rec8 = attacks::to_bgr8(rec);
    r.ssim_raw = quality::ssim(attacks::to_bgr8(raw), rec8);
    r.ssim_deid = quality::ssim(attacks::to_bgr8(deid), rec8);
    if (!o.strip_dir.empty()) {
      std::vector<torch::Tensor> tiles = {raw, deid};
      for (const auto& [step, image] : inv.snapshots) tiles.push_back(image);
      tiles.push_back(rec);
      r.strip = o.strip_dir / (file_stem(t.name) + ".png");
      attacks::write_strip(r.strip, tiles);
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    spdlog::info("replay {}/{} '{}': label {} ({}), MSE raw {:.3g} / de-identified {:.3g}, "
                 "{} L-BFGS steps, {:.1f} s",
                 i + 1, targets.size(), t.name, r.inferred_label,
                 r.label_correct ? "correct" : "wrong", r.mse_raw, r.mse_deid, r.iterations,
                 r.seconds);
    s.attacks.push_back(r);
  }

  const double n = static_cast<double>(s.attacks.size());
  for (double th : kThresholds) {
    s.success_raw[th] = 0;
    s.success_deid[th] = 0;
  }
  for (const auto& a : s.attacks) {
    s.label_accuracy += a.label_correct / n;
    s.mean_mse_raw += a.mse_raw / n;
    s.mean_mse_deid += a.mse_deid / n;
    s.mean_psnr_raw += a.psnr_raw / n;
    s.mean_psnr_deid += a.psnr_deid / n;
    s.mean_ssim_raw += a.ssim_raw / n;
    s.mean_ssim_deid += a.ssim_deid / n;
    for (double th : kThresholds) {
      s.success_raw[th] += (a.mse_raw < th) / n;
      s.success_deid[th] += (a.mse_deid < th) / n;
    }
  }
  return s;
}

}  // namespace ppreid::sim
