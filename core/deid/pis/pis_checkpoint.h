#pragma once

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "core/deid/pis/network.h"
#include "core/deid/pis/pis_images.h"

namespace ppreid::deid::pis {

// info.json of a PIS checkpoint: everything needed to rebuild the network and feed it.
struct PisModelInfo {
  NetworkOptions network;
  int num_ids = 0;          // identities the similarity classifier was trained on
  Geometry geometry;
  int step = 0;             // training steps done
  int stage1_steps = 0;
  int stage2_steps = 0;
  std::string feature_network;
  std::string config;       // the config file it was trained with
  std::uint64_t seed = 0;
  nlohmann::json metrics;   // last evaluation (reconstruction SSIM, ...)

  nlohmann::json to_json() const;
  static PisModelInfo from_json(const nlohmann::json& j, const std::string& where);
};

// A trained PIS model: network in eval mode plus how images enter it.
struct PisModel {
  PisNet net{nullptr};
  PisModelInfo info;
};

// Checkpoint directory: model.pt (the network), info.json, and training.pt (optimizer state and
// counters, written by the trainer) when `save_training` is given. The directory is replaced
// atomically.
void save_pis_checkpoint(const std::filesystem::path& dir, PisNet& net, const PisModelInfo& info,
                         const std::function<void(const std::filesystem::path&)>& save_training = {});
PisModelInfo read_pis_info(const std::filesystem::path& dir);
// Loads the network (eval mode, gradients off). Throws ppreid::Error naming the directory when
// it is not a PIS checkpoint or the weights do not match info.json.
PisModel load_pis_model(const std::filesystem::path& dir);
// The directory holding the complete checkpoint (dir or the .old twin of an interrupted save).
std::filesystem::path pis_checkpoint_dir(const std::filesystem::path& dir);

}  // namespace ppreid::deid::pis
