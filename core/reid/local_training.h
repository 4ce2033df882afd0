#pragma once

// One federated round of training on a site (no networking here: client/ feeds it the Task).

#include <cstdint>
#include <functional>

#include "core/data/dataset.h"
#include "core/reid/losses.h"
#include "core/reid/model.h"
#include "core/reid/train_config.h"
#include "core/reid/train_step.h"

namespace ppreid::reid {

// How a site trains one round: what the aggregator's Task says, plus the round number.
struct LocalRoundSettings {
  int local_epochs = 1;
  double learning_rate = 3.5e-4;
  double weight_decay = 5e-4;
  double fedprox_mu = 0.0;  // > 0: mu/2 ||w - w_task||^2 on the shared parameters
  int p = 16;               // identities per batch
  int k = 4;                // images per identity
  std::uint64_t seed = 0;
  std::uint64_t round = 0;
};

// Where a round is, passed to the callback before every step.
struct LocalRoundProgress {
  int epoch = 0;          // 0-based within the round
  int step = 0;           // steps finished so far in the round
  int steps_planned = 0;  // local_epochs * batches per epoch
};

// Called before every step; returning false stops the round there (cancellation). It runs on the
// training thread, which is where a site sends its heartbeats from.
using LocalStepCallback = std::function<bool(const LocalRoundProgress&)>;

struct LocalRoundResult {
  bool completed = false;      // false: the callback stopped the round early
  std::uint64_t samples = 0;   // train images of the store: the FedAvg weight
  int steps = 0;
  StepLosses mean_loss;        // over the steps run
  double seconds = 0.0;
  double images_per_second = 0.0;
};

// Loads `global` (the Task's shared weights) into the model, keeping its classifier head, and
// trains `local_epochs` epochs of P x K batches of the store's train split with the config's
// transform, loss weights and thread count, and the round's learning rate and weight decay.
//
// The optimizer (Adam) is created fresh every round: its moments describe the previous round's
// weights, which aggregation replaced, and a site restarted between rounds (which only keeps its
// head and centres on disk) then trains exactly as one that kept running. The centres' SGD has no
// state of its own.
//
// Deterministic given (seed, round): torch's generator is seeded from both and the loader plans
// epoch `round * local_epochs + e`, so every round sees a different batch plan while a repeated
// round sees the same one. Throws ppreid::Error for too few identities for P, a `global` that does
// not match the model's shared part, and a NaN/Inf loss (the weights are then those of the last
// good step; a site does not send them).
//
// Data-parallel (`comm` with W > 1 ranks, every rank calling with the same arguments): each step
// takes this rank's P identities of a W x P x K global batch, gradients are averaged over ranks
// (config.distributed), rank 0's `before_step` decides for all ranks (the others' is not called),
// and afterwards every rank holds the same weights (local BatchNorm statistics are averaged).
LocalRoundResult train_local_round(ReidModel& model, CenterLoss& center,
                                   const data::Dataset& store, const TrainConfig& config,
                                   const NamedTensors& global, const LocalRoundSettings& settings,
                                   const LocalStepCallback& before_step = nullptr,
                                   dist::Communicator* comm = nullptr);

}  // namespace ppreid::reid
