#pragma once

#include <filesystem>
#include <optional>
#include <nlohmann/json.hpp>

#include "core/data/dataset.h"
#include "core/distributed/communicator.h"
#include "core/reid/train_config.h"

namespace ppreid::reid {

struct TrainOptions {
  std::filesystem::path out;  // run directory: checkpoint/, metrics.jsonl, summary.json
  bool resume = false;        // continue from out/checkpoint
  bool evaluate = true;       // evaluate after the last epoch (and every eval.every epochs)
  // Start the shared part (backbone + neck) from this checkpoint directory, e.g. ImageNet
  // weights from `ppreid weights import`; the classifier always starts fresh.
  std::optional<std::filesystem::path> init;
  // Data-parallel training over comm's ranks (nullptr or world size 1: one process). Every rank
  // runs train_model with the same config and dataset; only rank 0 reads and writes `out`.
  dist::Communicator* comm = nullptr;
};

struct TrainSummary {
  int epochs_run = 0;         // in this invocation
  int last_epoch = -1;
  double seconds = 0.0;
  double images_per_second = 0.0;  // of all ranks together
  int world_size = 1;
  double final_loss = 0.0;
  nlohmann::json metrics;     // last evaluation, {"instance": ..., "centroid": ...}
  nlohmann::json to_json() const;
};

// Trains the BoT + centroid model on the dataset's train split with P x K batches, Adam with
// warm-up and step decay, the configured losses, a checkpoint after every epoch and evaluation
// on query/gallery. The torch thread count is set from the config. A NaN/Inf loss stops the run
// with an error (the last checkpoint stays).
//
// Data-parallel (options.comm with W > 1 ranks): rank 0's initial (or resumed) state is
// broadcast; every step each rank trains on its own P identities of a global W x P x K batch
// (disjoint), gradients are averaged in buckets (config.distributed), the loss parts are means
// over ranks, evaluation extracts each rank's share of query/gallery and gathers the features,
// and rank 0 alone writes the checkpoint, metrics.jsonl and summary.json. The result equals
// one process training on the same global batches with the loss averaged over the W sub-batches
// (and, with batch_norm: sync, BatchNorm over the whole global batch).
TrainSummary train_model(const TrainConfig& config, const data::Dataset& dataset,
                         const TrainOptions& options);

}  // namespace ppreid::reid
