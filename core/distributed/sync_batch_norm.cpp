#include "core/distributed/sync_batch_norm.h"

#include <cstdint>

#include "core/util/error.h"

namespace ppreid::dist {
namespace {

struct AllReduceSum : torch::autograd::Function<AllReduceSum> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               Communicator* comm, const std::string& what) {
    // The communicator outlives every graph built while it exists (it lives as long as the run).
    ctx->saved_data["comm"] = static_cast<std::int64_t>(reinterpret_cast<std::intptr_t>(comm));
    ctx->saved_data["what"] = what;
    torch::Tensor out = x.detach().clone().contiguous();
    comm->all_reduce_sum(out, what);
    return out;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto* comm =
        reinterpret_cast<Communicator*>(static_cast<std::intptr_t>(ctx->saved_data["comm"].toInt()));
    torch::Tensor g = grads[0].contiguous().clone();
    comm->all_reduce_sum(g, ctx->saved_data["what"].toStringRef() + " (backward)");
    return {g, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor all_reduce_sum_differentiable(const torch::Tensor& x, Communicator& comm,
                                            const std::string& what) {
  return AllReduceSum::apply(x, &comm, what);
}

torch::Tensor sync_batch_norm(const torch::Tensor& x, const torch::Tensor& weight,
                              const torch::Tensor& bias, torch::Tensor& running_mean,
                              torch::Tensor& running_var, torch::Tensor& num_batches_tracked,
                              double momentum, double eps, Communicator& comm) {
  if (x.dim() < 2) throw Error("sync_batch_norm: input must be [N,C,...], got " +
                               std::to_string(x.dim()) + " dimensions");
  const std::int64_t channels = x.size(1);
  std::vector<std::int64_t> reduce_dims{0};
  for (std::int64_t d = 2; d < x.dim(); ++d) reduce_dims.push_back(d);
  std::vector<std::int64_t> shape(static_cast<std::size_t>(x.dim()), 1);
  shape[1] = channels;

  // Two passes (mean, then the squared deviations from it) like a local BatchNorm, rather than
  // E[x^2] - E[x]^2, which loses the variance to cancellation when the mean is large.
  // The count travels with the sums (one collective): ranks may hold different batch sizes.
  const double local_count = static_cast<double>(x.numel() / channels);
  torch::Tensor sums = all_reduce_sum_differentiable(
      torch::cat({x.sum(reduce_dims), torch::full({1}, local_count, x.options())}), comm,
      "SyncBN mean");
  const double n = sums[channels].item<double>();
  torch::Tensor mean = sums.narrow(0, 0, channels) / n;
  torch::Tensor centered = x - mean.view(shape);
  torch::Tensor var = all_reduce_sum_differentiable(centered.pow(2).sum(reduce_dims), comm,
                                                    "SyncBN variance") / n;
  torch::Tensor y = centered * torch::rsqrt(var + eps).view(shape);
  if (weight.defined()) y = y * weight.view(shape);
  if (bias.defined()) y = y + bias.view(shape);

  torch::NoGradGuard no_grad;
  if (running_mean.defined()) running_mean.mul_(1 - momentum).add_(mean.detach(), momentum);
  if (running_var.defined())
    running_var.mul_(1 - momentum).add_(var.detach() * (n / std::max(n - 1, 1.0)), momentum);
  if (num_batches_tracked.defined()) num_batches_tracked.add_(1);
  return y;
}

}  // namespace ppreid::dist
