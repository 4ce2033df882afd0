#include "core/distributed/gradient_sync.h"

#include <cmath>

#include "core/util/error.h"

namespace ppreid::dist {

GradientSync::GradientSync(Communicator& comm, std::vector<torch::Tensor> params,
                           BucketOptions options)
    : comm_(comm), options_(options) {
  if (!std::isfinite(options.bucket_mb) || options.bucket_mb < 0)
    throw Error("distributed.bucket_mb must be >= 0 MB, got " + std::to_string(options.bucket_mb));
  const auto cap = static_cast<std::int64_t>(options.bucket_mb * 1024 * 1024 / sizeof(float));
  // Reverse order: backward reaches the last layers first, so their bucket fills first.
  std::vector<std::int64_t> sizes;
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    if (it->scalar_type() != torch::kFloat32 || !it->device().is_cpu())
      throw Error("GradientSync: parameters must be float32 CPU tensors");
    const std::int64_t n = it->numel();
    if (sizes.empty() || cap == 0 || (sizes.back() > 0 && sizes.back() + n > cap)) {
      buckets_.emplace_back();
      sizes.push_back(0);
    }
    Slot slot;
    slot.param = *it;
    slot.bucket = static_cast<int>(buckets_.size()) - 1;
    slot.offset = sizes.back();
    sizes.back() += n;
    buckets_.back().slots.push_back(static_cast<int>(slots_.size()));
    total_elements_ += n;
    slots_.push_back(slot);
  }
  for (std::size_t b = 0; b < buckets_.size(); ++b) buckets_[b].flat = torch::zeros({sizes[b]});
  if (options_.overlap) {
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      if (!slots_[i].param.requires_grad()) continue;
      const int index = static_cast<int>(i);
      hooks_.emplace_back(index, slots_[i].param.register_hook(
                                     [this, index](const torch::Tensor& grad) {
                                       on_gradient(index, grad);
                                     }));
    }
  }
}

GradientSync::~GradientSync() {
  // Collectives still in flight must finish before their buffers go away.
  for (auto& b : buckets_) {
    try {
      b.reduce.wait();
    } catch (const std::exception&) {
      // Already failing (a peer died); the error was or will be reported by finish_step.
    }
  }
  for (const auto& [slot, hook] : hooks_) slots_[static_cast<std::size_t>(slot)].param.remove_hook(hook);
}

void GradientSync::begin_step() {
  for (auto& b : buckets_) {
    b.pending = 0;
    b.launched = false;
    b.flat.zero_();
  }
  // Parameters that got no gradient last step will get none now either (the graph is the same
  // every step), so their buckets need not wait for them: without this, one unused tensor in the
  // first bucket would hold back every launch until backward ends.
  for (auto& slot : slots_) {
    slot.ready = false;
    if (!slot.unused) ++buckets_[static_cast<std::size_t>(slot.bucket)].pending;
  }
  next_launch_ = 0;
  launched_early_ = 0;
  in_step_ = true;
}

void GradientSync::on_gradient(int index, const torch::Tensor& grad) {
  if (!in_step_) return;  // a backward outside a training step (e.g. a test's reference)
  Slot& slot = slots_[static_cast<std::size_t>(index)];
  if (slot.ready) return;
  Bucket& b = buckets_[static_cast<std::size_t>(slot.bucket)];
  if (b.launched)
    throw Error("GradientSync: parameter " + std::to_string(index) +
                " got a gradient although it had none in the previous step and its bucket was "
                "already being all-reduced; the model's graph changed between steps (set "
                "distributed.overlap: false for models whose graph varies)");
  b.flat.narrow(0, slot.offset, slot.param.numel()).copy_(grad.reshape({-1}));
  slot.ready = true;
  if (slot.unused) {
    slot.unused = false;  // it is used after all; its bucket was not launched yet, so no harm
    return;
  }
  if (--b.pending == 0) launch_ready_in_order(/*in_backward=*/true);
}

void GradientSync::launch_ready_in_order(bool in_backward) {
  while (next_launch_ < num_buckets() && buckets_[static_cast<std::size_t>(next_launch_)].pending == 0) {
    launch(next_launch_);
    if (in_backward) ++launched_early_;
    ++next_launch_;
  }
}

void GradientSync::launch(int index) {
  Bucket& b = buckets_[static_cast<std::size_t>(index)];
  b.reduce = comm_.all_reduce_sum_async(
      b.flat, "gradient all-reduce (bucket " + std::to_string(index + 1) + " of " +
                  std::to_string(num_buckets()) + ")");
  b.launched = true;
}

void GradientSync::finish_step() {
  if (!in_step_) throw Error("GradientSync::finish_step() without begin_step()");
  in_step_ = false;
  // Without overlap (or for parameters the hooks did not see) the gradients are copied now.
  for (auto& slot : slots_) {
    if (slot.ready) continue;
    const torch::Tensor& grad = slot.param.grad();
    if (grad.defined()) {
      Bucket& b = buckets_[static_cast<std::size_t>(slot.bucket)];
      if (b.launched)
        throw Error("GradientSync: a parameter's gradient appeared after its bucket was "
                    "all-reduced; set distributed.overlap: false");
      b.flat.narrow(0, slot.offset, slot.param.numel()).copy_(grad.reshape({-1}));
    }
    // Learned once, after the first step: only with overlap does it change what waits for what.
    if (options_.overlap) slot.unused = !grad.defined();
  }
  for (auto& b : buckets_) b.pending = 0;
  launch_ready_in_order(/*in_backward=*/false);
  const double inv = 1.0 / comm_.world_size();
  for (auto& b : buckets_) {
    b.reduce.wait();
    b.flat.mul_(inv);
  }
  for (auto& slot : slots_) {
    torch::Tensor grad = slot.param.grad();
    if (!grad.defined()) continue;
    const Bucket& b = buckets_[static_cast<std::size_t>(slot.bucket)];
    grad.copy_(b.flat.narrow(0, slot.offset, slot.param.numel()).view_as(grad));
  }
}

}  // namespace ppreid::dist
