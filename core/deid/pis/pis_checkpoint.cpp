#include "core/deid/pis/pis_checkpoint.h"

#include "core/util/atomic_dir.h"
#include "core/util/atomic_file.h"
#include "core/util/error.h"

namespace ppreid::deid::pis {
namespace fs = std::filesystem;
namespace {
constexpr const char* kFormat = "ppreid-pis-1";
}

nlohmann::json PisModelInfo::to_json() const {
  return {{"format", kFormat},
          {"network",
           {{"channels", network.channels},
            {"blocks", network.blocks},
            {"latent_scales", network.latent_scales},
            {"latent_channels", network.latent_channels},
            {"posterior_variance", network.posterior_variance},
            {"app_pooling", network.app_pooling}}},
          {"num_ids", num_ids},
          {"geometry",
           {{"height", geometry.height}, {"width", geometry.width}, {"input_width", geometry.input_width}}},
          {"step", step},
          {"stage1_steps", stage1_steps},
          {"stage2_steps", stage2_steps},
          {"feature_network", feature_network},
          {"config", config},
          {"seed", seed},
          {"metrics", metrics}};
}

PisModelInfo PisModelInfo::from_json(const nlohmann::json& j, const std::string& where) {
  try {
    if (j.at("format").get<std::string>() != kFormat)
      throw Error(where + ": format '" + j.at("format").get<std::string>() + "' is not " + kFormat);
    PisModelInfo i;
    const auto& n = j.at("network");
    i.network.channels = n.at("channels").get<std::vector<int>>();
    i.network.blocks = n.at("blocks");
    i.network.latent_scales = n.at("latent_scales");
    i.network.latent_channels = n.at("latent_channels");
    i.network.posterior_variance = n.at("posterior_variance");
    i.network.app_pooling = n.at("app_pooling");
    i.num_ids = j.at("num_ids");
    i.geometry.height = j.at("geometry").at("height");
    i.geometry.width = j.at("geometry").at("width");
    i.geometry.input_width = j.at("geometry").at("input_width");
    i.step = j.at("step");
    i.stage1_steps = j.at("stage1_steps");
    i.stage2_steps = j.at("stage2_steps");
    i.feature_network = j.at("feature_network");
    i.config = j.at("config");
    i.seed = j.at("seed");
    i.metrics = j.value("metrics", nlohmann::json());
    return i;
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + ": malformed PIS checkpoint info (" + e.what() + ")");
  }
}

fs::path pis_checkpoint_dir(const fs::path& dir) {
  fs::path complete = util::complete_directory(dir, "info.json");
  if (complete.empty())
    throw Error("'" + dir.string() +
                "' is not a PIS checkpoint (no info.json); point --model at the checkpoint "
                "directory written by `ppreid pis train` (OUT/checkpoint)");
  return complete;
}

void save_pis_checkpoint(const fs::path& dir, PisNet& net, const PisModelInfo& info,
                         const std::function<void(const fs::path&)>& save_training) {
  util::write_directory_atomic(dir, [&](const fs::path& tmp) {
    torch::serialize::OutputArchive archive;
    net->save(archive);
    archive.save_to((tmp / "model.pt").string());
    if (save_training) save_training(tmp / "training.pt");
    util::write_file_atomic(tmp / "info.json", info.to_json().dump(2) + "\n");
  });
}

PisModelInfo read_pis_info(const fs::path& dir) {
  fs::path d = pis_checkpoint_dir(dir);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(util::read_file(d / "info.json"));
  } catch (const nlohmann::json::exception& e) {
    throw Error((d / "info.json").string() + ": not valid JSON (" + e.what() + ")");
  }
  return PisModelInfo::from_json(j, (d / "info.json").string());
}

PisModel load_pis_model(const fs::path& dir) {
  PisModel m;
  m.info = read_pis_info(dir);
  fs::path d = pis_checkpoint_dir(dir);
  m.net = PisNet(m.info.network, m.info.num_ids, m.info.geometry.height, m.info.geometry.input_width);
  try {
    torch::serialize::InputArchive archive;
    archive.load_from((d / "model.pt").string());
    m.net->load(archive);
  } catch (const c10::Error& e) {
    throw Error((d / "model.pt").string() +
                ": cannot load the PIS network (missing, truncated or not matching info.json): " +
                e.what_without_backtrace());
  }
  m.net->eval();
  for (auto& p : m.net->parameters()) p.set_requires_grad(false);
  return m;
}

}  // namespace ppreid::deid::pis
