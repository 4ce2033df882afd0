#include "core/reid/batch_norm.h"

#include "core/distributed/sync_batch_norm.h"

namespace ppreid::reid {

template <class Base>
torch::Tensor SyncableBatchNorm<Base>::forward(const torch::Tensor& input) {
  if (!sync || !this->is_training()) return Base::forward(input);
  this->_check_input_dim(input);
  const double momentum = this->options.momentum().value_or(0.1);
  return dist::sync_batch_norm(input, this->weight, this->bias, this->running_mean,
                               this->running_var, this->num_batches_tracked, momentum,
                               this->options.eps(), *sync);
}

template struct SyncableBatchNorm<torch::nn::BatchNorm1dImpl>;
template struct SyncableBatchNorm<torch::nn::BatchNorm2dImpl>;

int set_batch_norm_sync(torch::nn::Module& module, dist::Communicator* comm) {
  int switched = 0;
  for (const auto& m : module.modules(/*include_self=*/true)) {
    if (auto* bn = m->as<SyncableBatchNorm1dImpl>()) {
      bn->sync = comm;
      ++switched;
    } else if (auto* bn2 = m->as<SyncableBatchNorm2dImpl>()) {
      bn2->sync = comm;
      ++switched;
    }
  }
  return switched;
}

void average_batch_norm_statistics(torch::nn::Module& module, dist::Communicator& comm) {
  torch::NoGradGuard no_grad;
  for (auto& buffer : module.named_buffers()) {
    const std::string& name = buffer.key();
    const bool statistic = name.size() > 12 && (name.ends_with(".running_mean") ||
                                                name.ends_with(".running_var"));
    if (!statistic) continue;
    torch::Tensor t = buffer.value();
    comm.all_reduce_sum(t, "BatchNorm statistics average (" + name + ")");
    t.div_(comm.world_size());
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
