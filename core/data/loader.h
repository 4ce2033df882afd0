#pragma once

#include <torch/torch.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "core/data/dataset.h"
#include "core/data/loader_options.h"
#include "core/data/pk_sampler.h"
#include "core/data/transforms.h"

namespace ppreid::data {

// One collated batch. Row i of every tensor describes the same image.
struct Batch {
  torch::Tensor images;   // [N,3,H,W] float32, normalized RGB
  torch::Tensor labels;   // [N] int64: contiguous train labels (-1 outside the train split)
  torch::Tensor pids;     // [N] int64: identities as in the file names
  torch::Tensor camids;   // [N] int64: 0-based cameras
  torch::Tensor indices;  // [N] int64: positions in the split the batch was drawn from
  std::int64_t size() const { return images.defined() ? images.size(0) : 0; }
};

// What a worker needs to load images of one split; shared read-only by all workers.
struct SplitSource {
  std::filesystem::path root;
  std::vector<ImageRecord> records;
};

// Recycles the memory of batch image tensors. A fresh multi-megabyte tensor per batch is
// mmap'ed by malloc and page-faulted in on every batch (measured: ~20% of a worker's time);
// recycled buffers are already resident. A buffer returns to the pool when the last tensor
// using it is freed, whichever thread that happens on; the pool outlives its tensors.
class BatchBufferPool : public std::enable_shared_from_this<BatchBufferPool> {
 public:
  explicit BatchBufferPool(std::size_t max_free) : max_free_(max_free) {}
  ~BatchBufferPool();
  BatchBufferPool(const BatchBufferPool&) = delete;
  BatchBufferPool& operator=(const BatchBufferPool&) = delete;

  // An uninitialized contiguous float32 tensor of these sizes backed by a pooled buffer.
  torch::Tensor empty(at::IntArrayRef sizes);
  std::size_t free_buffers() const;

 private:
  struct Buffer {
    void* data = nullptr;
    std::size_t bytes = 0;
  };
  void give_back(Buffer buffer);

  const std::size_t max_free_;
  mutable std::mutex mutex_;
  std::vector<Buffer> free_;
};

// A torch BatchDataset: decodes and transforms the requested images into one Batch. Copies are
// cheap (shared pointers) because torch's DataLoader gives every worker its own copy. Any
// failure is rethrown as ppreid::Error naming the image path. `pooled_buffers` is how many
// idle batch buffers are kept for reuse (about prefetch + workers + 1).
class ReidImageDataset
    : public torch::data::datasets::BatchDataset<ReidImageDataset, Batch, BatchPlan> {
 public:
  ReidImageDataset(std::shared_ptr<const SplitSource> source,
                   std::shared_ptr<const Transform> transform, std::size_t pooled_buffers = 8);
  Batch get_batch(BatchPlan request) override;
  torch::optional<std::size_t> size() const override;
  // Batches finished by this dataset and all its copies (observability and prefetch tests).
  std::int64_t batches_loaded() const { return loaded_->load(); }

 private:
  std::shared_ptr<const SplitSource> source_;
  std::shared_ptr<const Transform> transform_;
  std::shared_ptr<BatchBufferPool> pool_;
  std::shared_ptr<std::atomic<std::int64_t>> loaded_;
};

// torch Sampler over one epoch of a PkSampler plan. next() ignores its batch_size argument:
// a batch is always P*K (with shards: this shard's P*K/shard_count, whole identities).
// reset() rewinds to the first batch of the same epoch.
class PkBatchSampler : public torch::data::samplers::Sampler<BatchPlan> {
 public:
  PkBatchSampler(std::shared_ptr<const PkSampler> sampler, int epoch, int shard_index = 0,
                 int shard_count = 1);
  void reset(torch::optional<std::size_t> new_size = torch::nullopt) override;
  torch::optional<BatchPlan> next(std::size_t batch_size) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;
  std::size_t num_batches() const { return plan_.size(); }

 private:
  std::vector<BatchPlan> plan(int epoch) const;

  std::shared_ptr<const PkSampler> sampler_;
  int shard_index_;
  int shard_count_;
  int epoch_;
  std::vector<BatchPlan> plan_;
  std::size_t cursor_ = 0;
};

// torch Sampler visiting 0..size-1 once in order, in batches of batch_size (the last may be
// smaller). Seeds are the indices; the test transform ignores them anyway.
class SequentialBatchSampler : public torch::data::samplers::Sampler<BatchPlan> {
 public:
  explicit SequentialBatchSampler(std::size_t size) : size_(size) {}
  void reset(torch::optional<std::size_t> new_size = torch::nullopt) override;
  torch::optional<BatchPlan> next(std::size_t batch_size) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

 private:
  std::size_t size_;
  std::size_t cursor_ = 0;
};

// The training loader: P x K batches of the train split with the BoT transform, decoded by
// `workers` threads (torch::data's DataLoader) that keep `prefetch_batches` batches in flight
// ahead of the consumer. Batches come out in plan order, so the content of an epoch depends on
// (seed, epoch) only, not on the number of workers.
//
//   TrainLoader loader(dataset, transform_options, loader_options);
//   for (int epoch = 0; epoch < epochs; ++epoch) {
//     loader.start_epoch(epoch);
//     while (auto batch = loader.next()) train_step(*batch);
//   }
//
// next() rethrows a worker's failure as ppreid::Error naming the image; restart the epoch
// after one. start_epoch() may be called at any time (also mid-epoch), and destroying the
// loader mid-epoch waits only for the batches being decoded at that moment.
class TrainLoader {
 public:
  TrainLoader(const Dataset& dataset, TransformOptions transform, LoaderOptions options);
  ~TrainLoader();
  TrainLoader(const TrainLoader&) = delete;
  TrainLoader& operator=(const TrainLoader&) = delete;

  // Plans epoch `epoch` and starts decoding its first batches in the background.
  void start_epoch(int epoch);
  // The next batch of the current epoch, nullopt at its end. Throws if no epoch was started.
  std::optional<Batch> next();
  // Batches in the current epoch (before the first start_epoch: in epoch 0).
  int batches_per_epoch() const { return batches_per_epoch_; }
  int epoch() const { return epoch_; }
  const PkSampler& sampler() const { return *pk_; }
  std::int64_t batches_loaded() const { return dataset_.batches_loaded(); }

 private:
  struct Running;
  LoaderOptions options_;
  std::shared_ptr<const PkSampler> pk_;
  ReidImageDataset dataset_;
  int epoch_ = -1;
  int batches_per_epoch_ = 0;
  std::unique_ptr<Running> running_;
};

struct EvalLoaderOptions {
  int batch_size = 128;
  int workers = 2;           // 0 decodes on the calling thread
  int prefetch_batches = 4;  // batches decoded ahead of the consumer
};

// The evaluation loader: every image of one split once, in split order, with the test
// transform (resize + normalize), for feature extraction. Starts at construction.
class EvalLoader {
 public:
  EvalLoader(const Dataset& dataset, SplitKind split, TransformOptions transform,
             EvalLoaderOptions options = {});
  EvalLoader(std::filesystem::path root, std::vector<ImageRecord> records,
             TransformOptions transform, EvalLoaderOptions options = {});
  ~EvalLoader();
  EvalLoader(const EvalLoader&) = delete;
  EvalLoader& operator=(const EvalLoader&) = delete;

  // Back to the first batch (abandons the current pass).
  void restart();
  std::optional<Batch> next();
  int num_batches() const;
  std::size_t num_images() const { return source_->records.size(); }

 private:
  struct Running;
  EvalLoaderOptions options_;
  std::shared_ptr<const SplitSource> source_;
  ReidImageDataset dataset_;
  std::unique_ptr<Running> running_;
};

}  // namespace ppreid::data
