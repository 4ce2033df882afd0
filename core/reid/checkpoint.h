#pragma once

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/reid/model.h"

namespace ppreid::reid {

// One call each for the two parts of a model: the shared part (backbone + BNNeck), which
// federation exchanges, and the head (classifier), which never leaves its site. Files are
// state_dicts Python's torch.load can read.
void save_shared(const ReidModel& model, const std::filesystem::path& file);
void load_shared(ReidModel& model, const std::filesystem::path& file);
void save_head(const ReidModel& model, const std::filesystem::path& file);
void load_head(ReidModel& model, const std::filesystem::path& file);

// What a checkpoint directory says about its model and run (info.json).
struct CheckpointInfo {
  BackboneOptions backbone;
  int num_classes = 0;
  int feature_dim = 0;
  int height = 0, width = 0;
  int epoch = -1;            // last completed epoch
  int epochs = 0;            // epochs planned
  std::uint64_t seed = 0;
  std::string config;        // the training config it came from
  nlohmann::json metrics;    // evaluation results so far

  nlohmann::json to_json() const;
  static CheckpointInfo from_json(const nlohmann::json& j, const std::string& where);
};

// A checkpoint is a directory: info.json, shared.pt, head.pt and, for resumable training runs,
// training.pt (optimizer and centre-loss state). It is written into a sibling temporary
// directory and swapped in, so a crash leaves either the previous or the new checkpoint.
void save_checkpoint(const std::filesystem::path& dir, const ReidModel& model,
                     const CheckpointInfo& info,
                     const std::function<void(const std::filesystem::path& file)>& save_training =
                         nullptr);

CheckpointInfo read_checkpoint_info(const std::filesystem::path& dir);

// Builds the model described by info.json and loads both parts. Throws ppreid::Error naming the
// missing file or the mismatched tensors.
ReidModel load_checkpoint_model(const std::filesystem::path& dir, CheckpointInfo* info = nullptr);

}  // namespace ppreid::reid
