#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>

#include "core/data/loader.h"
#include "core/distributed/gradient_sync.h"
#include "core/reid/losses.h"
#include "core/reid/model.h"
#include "core/reid/train_config.h"

namespace ppreid::reid {

// The unweighted loss parts of one step (or their means over several), for logs and metrics.
struct StepLosses {
  double total = 0, id = 0, triplet = 0, center = 0, centroid = 0;
  double proximal = 0;  // FedProx's mu/2 ||w - w_global||^2; 0 outside federated rounds
};

// Running sums of StepLosses; mean() divides by the steps added.
class LossMeans {
 public:
  void add(const StepLosses& s);
  StepLosses mean() const;
  int steps() const { return steps_; }

 private:
  StepLosses sum_;
  int steps_ = 0;
};

// FedProx's anchor for a step: the round's global weights and mu (> 0 adds the term).
struct ProximalAnchor {
  const NamedTensors* global = nullptr;
  double mu = 0.0;
};

// What one optimization step works on. The whole-run trainer and a site's federated round both
// train through train_step(), so the BoT recipe (loss parts, centre-loss gradient rescaling, the
// order of zero_grad/backward/step) lives in one place.
struct StepContext {
  ReidModel& model;
  CenterLoss& center;
  torch::optim::Optimizer& optimizer;         // the model's (Adam)
  torch::optim::Optimizer& center_optimizer;  // the centres' own SGD
  const LossOptions& loss;
  ProximalAnchor proximal;
  // Data-parallel training: the loss parts are averaged over ranks (so all ranks log, and stop
  // on, the same value) and `sync` averages the gradients between backward and the optimizer.
  dist::Communicator* comm = nullptr;
  dist::GradientSync* sync = nullptr;
};

// One step on `batch` (the model must be in train mode). With ctx.comm, the returned parts are
// the means over ranks and `batch` is this rank's share of the global batch. A NaN/Inf loss (on
// any rank) throws ppreid::Error
// whose message is `describe(total)` before any weight changes, so the caller's last good state
// stays intact and the message can say where it happened and what to do.
StepLosses train_step(StepContext& ctx, const data::Batch& batch,
                      const std::function<std::string(double total)>& describe);

// The trainable parameters of `model` (what Adam optimizes).
std::vector<torch::Tensor> trainable_parameters(const ReidModel& model);

// What a rank of a data-parallel run (`comm` with W > 1 ranks) changes to train its share, for the
// whole-run trainer and a site's rounds alike: `loader` takes this rank's shard of every global
// batch, the model's BatchNorm layers become SyncBN for `options.batch_norm` "sync" (else they
// keep local statistics), and the returned GradientSync averages the gradients of the trainable
// parameters and the centres (set it as the StepContext's `sync`).
std::unique_ptr<dist::GradientSync> prepare_data_parallel(ReidModel& model, CenterLoss& center,
                                                          const DistributedOptions& options,
                                                          dist::Communicator& comm,
                                                          data::LoaderOptions& loader);

}  // namespace ppreid::reid
