#include "core/reid/checkpoint.h"

#include "core/reid/state_dict.h"
#include "core/util/atomic_dir.h"
#include "core/util/atomic_file.h"
#include "core/util/error.h"

namespace ppreid::reid {
namespace fs = std::filesystem;

void save_shared(const ReidModel& model, const fs::path& file) {
  save_state_dict(file, model->shared_state());
}

void load_shared(ReidModel& model, const fs::path& file) {
  try {
    model->load_shared_state(load_state_dict(file));
  } catch (const Error& e) {
    throw Error("cannot load the shared part from '" + file.string() + "': " + e.what());
  }
}

void save_head(const ReidModel& model, const fs::path& file) {
  save_state_dict(file, model->head_state());
}

void load_head(ReidModel& model, const fs::path& file) {
  try {
    model->load_head_state(load_state_dict(file));
  } catch (const Error& e) {
    throw Error("cannot load the classifier head from '" + file.string() + "': " + e.what());
  }
}

nlohmann::json CheckpointInfo::to_json() const {
  return {{"format", "ppreid-checkpoint-v1"},
          {"backbone",
           {{"arch", backbone.arch},
            {"last_stride_one", backbone.last_stride_one},
            {"activation", backbone.activation},
            {"strides", backbone.strides}}},
          {"num_classes", num_classes},
          {"feature_dim", feature_dim},
          {"image", {{"height", height}, {"width", width}}},
          {"epoch", epoch},
          {"epochs", epochs},
          {"seed", seed},
          {"config", config},
          {"metrics", metrics.is_null() ? nlohmann::json::object() : metrics}};
}

CheckpointInfo CheckpointInfo::from_json(const nlohmann::json& j, const std::string& where) {
  try {
    if (j.at("format") != "ppreid-checkpoint-v1")
      throw Error(where + ": unknown checkpoint format " + j.at("format").dump());
    CheckpointInfo c;
    const auto& b = j.at("backbone");
    c.backbone.arch = b.at("arch");
    c.backbone.last_stride_one = b.at("last_stride_one");
    c.backbone.activation = b.at("activation");
    c.backbone.strides = b.at("strides");
    c.num_classes = j.at("num_classes");
    c.feature_dim = j.at("feature_dim");
    c.height = j.at("image").at("height");
    c.width = j.at("image").at("width");
    c.epoch = j.at("epoch");
    c.epochs = j.at("epochs");
    c.seed = j.at("seed");
    c.config = j.at("config");
    c.metrics = j.at("metrics");
    return c;
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + ": malformed checkpoint info (" + e.what() + ")");
  }
}

void save_checkpoint(const fs::path& dir, const ReidModel& model, const CheckpointInfo& info,
                     const std::function<void(const fs::path&)>& save_training) {
  util::write_directory_atomic(dir, [&](const fs::path& tmp) {
    save_shared(model, tmp / "shared.pt");
    save_head(model, tmp / "head.pt");
    if (save_training) save_training(tmp / "training.pt");
    util::write_file_atomic(tmp / "info.json", info.to_json().dump(2) + "\n");
  });
}

CheckpointInfo read_checkpoint_info(const fs::path& dir) {
  fs::path dir_or_old = util::complete_directory(dir, "info.json");
  if (dir_or_old.empty())
    throw Error("'" + dir.string() + "' is not a ppreid checkpoint (no info.json); " +
                "point --model at the checkpoint directory written by `ppreid train`");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(util::read_file(dir_or_old / "info.json"));
  } catch (const nlohmann::json::exception& e) {
    throw Error((dir_or_old / "info.json").string() + ": not valid JSON (" + e.what() + ")");
  }
  return CheckpointInfo::from_json(j, (dir_or_old / "info.json").string());
}

ReidModel load_checkpoint_model(const fs::path& dir, CheckpointInfo* info_out) {
  CheckpointInfo info = read_checkpoint_info(dir);
  for (const char* part : {"shared.pt", "head.pt"})
    if (!fs::exists(dir / part))
      throw Error("checkpoint '" + dir.string() + "' is missing " + part +
                  (std::string(part) == "head.pt" ? " (the classifier head)"
                                                  : " (the backbone and neck)"));
  ReidModel model(ModelOptions{info.backbone, info.num_classes, true});
  load_shared(model, dir / "shared.pt");
  load_head(model, dir / "head.pt");
  if (info_out) *info_out = info;
  return model;
}

}  // namespace ppreid::reid
