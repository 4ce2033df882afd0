#include "core/reid/batch_norm.h"

#include "core/distributed/sync_batch_norm.h"
#include "core/reid/model.h"
#include "core/util/error.h"

namespace ppreid::reid {

SyncableBatchNormImpl::SyncableBatchNormImpl(std::int64_t num_features, int dims)
    : num_features_(num_features), dims_(dims) {
  if (num_features < 1 || (dims != 1 && dims != 2))
    throw Error("SyncableBatchNorm: need num_features >= 1 and dims 1 or 2, got " +
                std::to_string(num_features) + " and " + std::to_string(dims));
  reset();
}

void SyncableBatchNormImpl::reset() {
  // The registration order and names of torch's BatchNorm.
  weight = register_parameter("weight", torch::ones({num_features_}));
  bias = register_parameter("bias", torch::zeros({num_features_}));
  running_mean = register_buffer("running_mean", torch::zeros({num_features_}));
  running_var = register_buffer("running_var", torch::ones({num_features_}));
  num_batches_tracked = register_buffer("num_batches_tracked", torch::tensor(0, torch::kLong));
}

void SyncableBatchNormImpl::set_momentum(double momentum) {
  if (!(momentum >= 0.0 && momentum <= 1.0))
    throw Error("BatchNorm momentum must be in [0, 1], got " + std::to_string(momentum));
  momentum_ = momentum;
}

void SyncableBatchNormImpl::pretty_print(std::ostream& stream) const {
  stream << "ppreid::reid::SyncableBatchNorm" << dims_ << "d(" << num_features_
         << ", eps=" << eps_ << ", momentum=" << momentum_ << (sync ? ", sync" : "") << ")";
}

torch::Tensor SyncableBatchNormImpl::forward(const torch::Tensor& input) {
  const bool shape_ok = dims_ == 1 ? input.dim() == 2 || input.dim() == 3 : input.dim() == 4;
  if (!shape_ok || input.size(1) != num_features_)
    throw Error("BatchNorm" + std::to_string(dims_) + "d over " + std::to_string(num_features_) +
                " channels got an input of shape " + shape_string(input));
  if (is_training() && sync)
    return dist::sync_batch_norm(input, weight, bias, running_mean, running_var,
                                 num_batches_tracked, momentum_, eps_, *sync);
  if (is_training()) num_batches_tracked.add_(1);  // what torch's BatchNorm counts
  return torch::batch_norm(input, weight, bias, running_mean, running_var, is_training(),
                           momentum_, eps_, /*cudnn_enabled=*/true);
}

int set_batch_norm_sync(torch::nn::Module& module, dist::Communicator* comm) {
  int switched = 0;
  for (const auto& m : module.modules(/*include_self=*/true)) {
    if (auto* bn = m->as<SyncableBatchNormImpl>()) {
      bn->sync = comm;
      ++switched;
    }
  }
  return switched;
}

void average_batch_norm_statistics(torch::nn::Module& module, dist::Communicator& comm) {
  torch::NoGradGuard no_grad;
  for (const auto& m : module.modules(/*include_self=*/true)) {
    auto* bn = m->as<SyncableBatchNormImpl>();
    if (!bn) continue;
    for (torch::Tensor* t : {&bn->running_mean, &bn->running_var}) {
      comm.all_reduce_sum(*t, "BatchNorm running statistics average");
      t->div_(comm.world_size());
    }
  }
}

void broadcast_module_state(torch::nn::Module& module, dist::Communicator& comm, int root) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.named_parameters()) {
    torch::Tensor t = p.value();
    comm.broadcast(t, root, "initial weights (" + p.key() + ")");
  }
  for (auto& b : module.named_buffers()) {
    torch::Tensor t = b.value();
    comm.broadcast(t, root, "initial buffers (" + b.key() + ")");
  }
}

}  // namespace ppreid::reid
