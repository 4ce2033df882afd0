#pragma once

// Averages the gradients of a model over all ranks after every backward pass, DDP-style: the
// parameters are grouped into buckets of about `bucket_mb` (in reverse registration order, the
// order backward produces their gradients), and with `overlap` a bucket's all-reduce starts from
// a gradient hook as soon as its last gradient exists, while backward goes on with the layers
// below. Buckets are launched strictly in index order so every rank issues the same collectives
// in the same order.

#include <torch/torch.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "core/distributed/communicator.h"

namespace ppreid::dist {

struct BucketOptions {
  double bucket_mb = 25.0;  // PyTorch DDP's default; 0 puts every tensor in its own bucket
  bool overlap = true;      // start all-reduces during backward (gradient hooks)
};

class GradientSync {
 public:
  // `params` are the tensors whose gradients are averaged (float32, CPU). With overlap, hooks
  // are registered on them; they are removed again when the GradientSync is destroyed.
  GradientSync(Communicator& comm, std::vector<torch::Tensor> params, BucketOptions options);
  ~GradientSync();
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;

  // Before backward: forget the previous step's gradients.
  void begin_step();
  // After backward: all-reduce what is not in flight yet, wait, and leave every parameter's
  // .grad the average over ranks. A parameter without a gradient on this rank contributes zeros
  // and keeps an undefined .grad (the ranks run the same graph, so it has none anywhere).
  void finish_step();

  int num_buckets() const { return static_cast<int>(buckets_.size()); }
  std::int64_t num_elements() const { return total_elements_; }
  // Buckets whose all-reduce started during the last backward (observability and tests).
  int launched_during_backward() const { return launched_early_; }

 private:
  struct Slot {
    torch::Tensor param;
    int bucket = 0;
    std::int64_t offset = 0;  // in the bucket's flat buffer
    bool ready = false;
    bool unused = false;  // had no gradient in the last step
  };
  struct Bucket {
    torch::Tensor flat;
    std::vector<int> slots;
    int pending = 0;
    PendingReduce reduce;
    bool launched = false;
  };
  void on_gradient(int slot, const torch::Tensor& grad);
  void launch_ready_in_order(bool in_backward);
  void launch(int bucket);

  Communicator& comm_;
  BucketOptions options_;
  std::vector<Slot> slots_;
  std::vector<Bucket> buckets_;
  std::vector<std::pair<int, unsigned>> hooks_;  // (slot, hook id)
  int next_launch_ = 0;
  int launched_early_ = 0;
  bool in_step_ = false;
  std::int64_t total_elements_ = 0;
};

}  // namespace ppreid::dist
