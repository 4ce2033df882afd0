#pragma once

// SyncBN: batch normalization in training mode over the global batch of a data-parallel step.
// The per-channel statistics are all-reduced in the forward pass and, through the autograd graph,
// their gradients in the backward pass, so the result equals BatchNorm over the W sub-batches
// concatenated (up to float rounding).

#include <torch/torch.h>

#include <string>

#include "core/distributed/communicator.h"

namespace ppreid::dist {

// Sum over ranks that autograd can differentiate: backward sums the incoming gradients over
// ranks too (d/dx_r of sum_r' L_r'(S) where S = sum_r x_r).
torch::Tensor all_reduce_sum_differentiable(const torch::Tensor& x, Communicator& comm,
                                            const std::string& what);

// Training-mode BatchNorm of `x` ([N,C] or [N,C,...]) with the global batch's mean and (biased)
// variance; running statistics are updated like torch's BatchNorm (unbiased variance over the
// global count, `momentum`, num_batches_tracked += 1). weight/bias may be undefined (affine off).
torch::Tensor sync_batch_norm(const torch::Tensor& x, const torch::Tensor& weight,
                              const torch::Tensor& bias, torch::Tensor& running_mean,
                              torch::Tensor& running_var, torch::Tensor& num_batches_tracked,
                              double momentum, double eps, Communicator& comm);

}  // namespace ppreid::dist
