#pragma once

#include <torch/torch.h>

#include "core/reid/model.h"

namespace ppreid::reid {

// FedProx's proximal term (Li et al. 2020), which a site adds to its training loss:
//   mu/2 * sum_k ||w_k - w_g,k||^2
// over every tensor of `local` (the live parameters being trained, e.g.
// ReidModelImpl::shared_parameters()), each compared with the tensor of the same name in `global` (the weights
// of the round's Task, a detached snapshot). Its gradient with respect to w_k is mu (w_k - w_g,k);
// `global` gets no gradient. Returns a 0-dim tensor (0 when mu is 0, still part of the graph).
// Throws ppreid::Error naming every local tensor that `global` lacks or holds with another shape,
// and for a negative or non-finite mu.
torch::Tensor proximal_term(const NamedTensors& local, const NamedTensors& global, double mu);

}  // namespace ppreid::reid
