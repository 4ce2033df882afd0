#pragma once

// Gradient-inversion replay: what an honest-but-curious aggregator could recover from an update
// of one image. A fresh attack model (not the federation's model, and not its multi-image
// updates: issue #22) computes the update of one de-identified image; a real site-side client
// sends it over a real CURVE ZeroMQ channel to a real aggregator-side socket; the attacker
// decodes exactly the bytes that arrived and runs iDLG/DLG (core/attacks) on them.
//  - FedSGD: the site shares the gradient of one image's loss; the attacker matches it directly.
//  - FedAvg: the site runs `local_steps` SGD steps with `local_lr` and shares its new weights; the
//    attacker matches (weights before - after) / (lr * steps), the average gradient.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/attacks/attack_models.h"
#include "core/attacks/gradient_inversion.h"

namespace ppreid::sim {

enum class ReplayMode { kFedSgd, kFedAvg };

// What the attacker holds under secure aggregation (the victim and secure_sites - 1 other sites,
// each sharing the update of another image, run the protocol of protocols/secagg):
//   kOff:    the victim's clear update (no secure aggregation);
//   kMasked: the victim's masked update exactly as the aggregator decoded it, dequantized as if it
//            were the clear quantized update (the most the aggregator can do with one site's
//            message);
//   kSum:    the unmasked result: the weighted mean of all the sites' updates.
enum class ReplaySecure { kOff, kMasked, kSum };
ReplaySecure parse_replay_secure(const std::string& name);  // off | masked | sum
const char* to_string(ReplaySecure secure);
ReplayMode parse_replay_mode(const std::string& name);  // fedsgd | fedavg; ppreid::Error else
const char* to_string(ReplayMode mode);

struct ReplayOptions {
  attacks::AttackModelOptions model;  // classes: labels are taken modulo classes
  attacks::InversionMethod method = attacks::InversionMethod::kIdlg;
  ReplayMode mode = ReplayMode::kFedSgd;
  int iterations = 300;
  double local_lr = 0.01;  // FedAvg
  int local_steps = 1;     // FedAvg
  ReplaySecure secure = ReplaySecure::kOff;
  int secure_sites = 3;    // sites in the secure sum (the victim included)
  std::uint64_t seed = 0;  // model weights and dummy images
  std::vector<int> snapshots = {1, 10, 50};  // iterations shown in the strips
  std::filesystem::path strip_dir;           // empty: no PNG strips
  // LibTorch threads while attacking (restored afterwards). One by default: the attack models
  // are small, and with a second OpenMP thread spin-waiting a busy core the L-BFGS steps slow
  // down many times over.
  int threads = 1;
  // Called with what the attacker decoded from each update, in the model's parameter order,
  // before the attack (tests compare it with what the site computed).
  std::function<void(const std::vector<torch::Tensor>& received)> on_received;
};

// One victim image: the raw crop (never leaves the site; used only to score the attack) and the
// de-identified crop the site actually trained on.
struct ReplayTarget {
  std::string name;  // e.g. the image's file name, used for the strip's file name
  std::filesystem::path raw_image, deid_image;
  std::int64_t label = 0;
};

// The run's CURVE keys (simulations/population.h SimKeys provides them).
struct ReplayKeys {
  std::filesystem::path aggregator_secret_key, aggregator_public_key;
  std::filesystem::path site_secret_key, allow_list_dir;
  std::string site_id;
};

struct AttackRecord {
  std::string name;
  std::int64_t label = 0, inferred_label = -1;
  bool label_correct = false;
  double mse_raw = 0, psnr_raw = 0, ssim_raw = 0;     // reconstruction vs the raw image
  double mse_deid = 0, psnr_deid = 0, ssim_deid = 0;  // vs the de-identified image trained on
  int iterations = 0;
  double distance = 0;   // final gradient distance
  std::size_t wire_bytes = 0;  // size of the update message the aggregator received
  double seconds = 0;
  std::filesystem::path strip;  // PNG: raw | de-identified | snapshots... | final
  nlohmann::json to_json() const;  // every field; strip relative name when set
};

struct ReplaySummary {
  std::vector<AttackRecord> attacks;
  double label_accuracy = 0;
  // MSE threshold -> fraction of attacks whose reconstruction is within it (1e-2, 1e-3, 1e-4).
  std::map<double, double> success_raw, success_deid;
  double mean_mse_raw = 0, mean_mse_deid = 0, mean_ssim_raw = 0, mean_ssim_deid = 0;
  double mean_psnr_raw = 0, mean_psnr_deid = 0;  // PSNR capped at 100 dB (identical images)
  // {"model","method","mode","attacks":[...],"label_accuracy","success_raw":{"1e-02":..},...}
  nlohmann::json to_json(const ReplayOptions& options) const;
};

// Replays the attack on every target. Throws ppreid::Error for unreadable images, empty targets,
// bad keys, or a transport failure (with what to do).
ReplaySummary replay_gradient_attacks(const std::vector<ReplayTarget>& targets,
                                      const ReplayKeys& keys, const ReplayOptions& options);

}  // namespace ppreid::sim
