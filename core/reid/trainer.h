#pragma once

#include <filesystem>
#include <optional>
#include <nlohmann/json.hpp>

#include "core/data/dataset.h"
#include "core/reid/train_config.h"

namespace ppreid::reid {

struct TrainOptions {
  std::filesystem::path out;  // run directory: checkpoint/, metrics.jsonl, summary.json
  bool resume = false;        // continue from out/checkpoint
  bool evaluate = true;       // evaluate after the last epoch (and every eval.every epochs)
  // Start the shared part (backbone + neck) from this checkpoint directory, e.g. ImageNet
  // weights from `ppreid weights import`; the classifier always starts fresh.
  std::optional<std::filesystem::path> init;
};

struct TrainSummary {
  int epochs_run = 0;         // in this invocation
  int last_epoch = -1;
  double seconds = 0.0;
  double images_per_second = 0.0;
  double final_loss = 0.0;
  nlohmann::json metrics;     // last evaluation, {"instance": ..., "centroid": ...}
  nlohmann::json to_json() const;
};

// Trains the BoT + centroid model on the dataset's train split with P x K batches, Adam with
// warm-up and step decay, the configured losses, a checkpoint after every epoch and evaluation
// on query/gallery. The torch thread count is set from the config. A NaN/Inf loss stops the run
// with an error (the last checkpoint stays).
TrainSummary train_model(const TrainConfig& config, const data::Dataset& dataset,
                         const TrainOptions& options);

}  // namespace ppreid::reid
