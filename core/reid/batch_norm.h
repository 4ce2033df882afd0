#pragma once

// The model's BatchNorm layers, which a data-parallel run can switch to SyncBN
// (distributed.batch_norm: sync). Parameters, buffers and their names are those of torch's
// BatchNorm1d/2d (weight, bias, running_mean, running_var, num_batches_tracked), so checkpoints
// and imported torchvision weights are unchanged, and so is the arithmetic until
// set_batch_norm_sync() hands the layers a communicator.
//
// A module of its own rather than a subclass of torch's: a subclass's vtables refer to
// BatchNormImplBase::pretty_print, which Debian's LibTorch does not export.

#include <torch/torch.h>

#include <cstdint>
#include <ostream>

namespace ppreid::dist {
class Communicator;  // core/distributed/communicator.h; a pointer here, so no c10d headers
}  // namespace ppreid::dist

namespace ppreid::reid {

class SyncableBatchNormImpl : public torch::nn::Cloneable<SyncableBatchNormImpl> {
 public:
  // `dims` 1: inputs [N,C] or [N,C,L] (BatchNorm1d); 2: [N,C,H,W] (BatchNorm2d). eps 1e-5,
  // momentum 0.1, affine, running statistics tracked: torch's defaults.
  SyncableBatchNormImpl(std::int64_t num_features, int dims);

  void reset() override;
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward(const torch::Tensor& input);

  torch::Tensor weight, bias, running_mean, running_var, num_batches_tracked;
  dist::Communicator* sync = nullptr;  // training-mode statistics over all ranks when set

  std::int64_t num_features() const { return num_features_; }
  double eps() const { return eps_; }
  double momentum() const { return momentum_; }
  // The weight of a batch's statistics in the running ones (1: replace them by the batch's).
  void set_momentum(double momentum);

 private:
  std::int64_t num_features_;
  int dims_;
  double eps_ = 1e-5;
  double momentum_ = 0.1;
};
TORCH_MODULE(SyncableBatchNorm);

inline SyncableBatchNorm SyncableBatchNorm1d(std::int64_t num_features) {
  return SyncableBatchNorm(num_features, 1);
}
inline SyncableBatchNorm SyncableBatchNorm2d(std::int64_t num_features) {
  return SyncableBatchNorm(num_features, 2);
}

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
