#pragma once

// BatchNorm layers that a data-parallel run can switch to SyncBN (distributed.batch_norm: sync):
// the same parameters, buffers and names as torch's BatchNorm1d/2d (checkpoints and imported
// torchvision weights are unchanged), and the same behaviour until set_batch_norm_sync() hands
// them a communicator.

#include <torch/torch.h>

#include "core/distributed/communicator.h"

namespace ppreid::reid {

template <class Base>
struct SyncableBatchNorm : Base {
  using Base::Base;
  torch::Tensor forward(const torch::Tensor& input);
  dist::Communicator* sync = nullptr;  // training-mode statistics over all ranks when set
};

struct SyncableBatchNorm1dImpl : SyncableBatchNorm<torch::nn::BatchNorm1dImpl> {
  using SyncableBatchNorm::SyncableBatchNorm;
};
TORCH_MODULE(SyncableBatchNorm1d);

struct SyncableBatchNorm2dImpl : SyncableBatchNorm<torch::nn::BatchNorm2dImpl> {
  using SyncableBatchNorm::SyncableBatchNorm;
};
TORCH_MODULE(SyncableBatchNorm2d);

// Points every SyncableBatchNorm in `module` at `comm` (nullptr: back to local statistics).
// Returns how many layers were switched.
int set_batch_norm_sync(torch::nn::Module& module, dist::Communicator* comm);

// Local BatchNorm leaves each rank with running statistics of its own sub-batches; this replaces
// them by their mean over ranks (the counters are equal), so evaluation and checkpoints see one
// model. Collective.
void average_batch_norm_statistics(torch::nn::Module& module, dist::Communicator& comm);

// Copies rank `root`'s parameters and buffers to every rank (a run's common starting point).
void broadcast_module_state(torch::nn::Module& module, dist::Communicator& comm, int root = 0);

}  // namespace ppreid::reid
