#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/profile/profile.h"
#include "core/reid/backbone_options.h"
#include "core/reid/centroid_protocol.h"
#include "core/reid/loss_options.h"

namespace ppreid::reid {

struct OptimizerOptions {
  double lr = 3.5e-4;           // Adam, BoT
  double weight_decay = 5e-4;
  double center_lr = 0.5;       // the centre-loss centres' own SGD
};

// BoT's WarmupMultiStepLR: linear warm-up from warmup_factor * lr over warmup_epochs, then
// multiply by gamma at every milestone.
struct ScheduleOptions {
  int epochs = 120;
  int warmup_epochs = 10;
  double warmup_factor = 0.01;
  std::vector<int> milestones = {40, 70};
  double gamma = 0.1;
  double lr_at(double base_lr, int epoch) const;
};

struct EvalOptions {
  std::string metric = "euclidean";  // euclidean | cosine
  bool centroids = true;             // also report centroid retrieval
  // eval.centroid_protocol: reference (centroids-reid, comparable with the papers) | strict |
  // all-cameras; see core/reid/centroids.h.
  CentroidProtocol centroid_protocol = CentroidProtocol::kReference;
  int every = 0;                     // evaluate every N epochs (0: only after the last one)
  int batch_size = 128;
};

struct LossOptions {
  LossWeights weights;       // a weight of 0 switches that loss off
  double label_smoothing = 0.1;
  double margin = 0.3;
};

// Data-parallel training inside a site (ppreid train/site --world-size W > 1); ignored otherwise.
struct DistributedOptions {
  // local: each rank normalizes with its own sub-batch (running statistics averaged over ranks
  // before evaluation and checkpoints); sync: SyncBN, statistics of the whole W x P x K batch.
  std::string batch_norm = "local";
  double bucket_mb = 25.0;        // gradient all-reduce bucket size; 0 = one tensor at a time
  bool overlap = true;            // start bucket all-reduces during backward
  double timeout_seconds = 300;   // rendezvous and collectives; --dist-timeout overrides
};

// configs/train/*.yaml: the profile sections (runtime, image, transform, loader) plus model,
// loss, optimizer, schedule and eval.
struct TrainConfig {
  Profile profile;
  BackboneOptions backbone;
  LossOptions loss;
  OptimizerOptions optimizer;
  ScheduleOptions schedule;
  EvalOptions eval;
  DistributedOptions distributed;
};

TrainConfig load_train_config(const std::filesystem::path& file);
TrainConfig parse_train_config(const std::string& yaml, const std::string& file_label);

}  // namespace ppreid::reid
