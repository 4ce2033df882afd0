#include "core/data/loader.h"

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <new>
#include <string>
#include <utility>

#include "core/util/error.h"
#include "core/util/image.h"
#include "core/util/rng.h"

namespace ppreid::data {
namespace {

void check_loader_counts(const char* section, int workers, int prefetch) {
  if (workers < 0)
    throw Error(std::string(section) +
                ".workers must be >= 0 (0 decodes on the calling thread), got " +
                std::to_string(workers));
  if (prefetch < 1)
    throw Error(std::string(section) + ".prefetch_batches must be >= 1, got " +
                std::to_string(prefetch));
}

// Idle batch buffers worth keeping: the batches in flight, the one the consumer holds, and one
// being handed over.
std::size_t pooled_buffers(int workers, int prefetch) {
  return static_cast<std::size_t>(std::max(0, workers) + std::max(0, prefetch) + 2);
}

const std::vector<ImageRecord>& records_of(const Dataset& dataset, SplitKind split) {
  // Not Dataset::split(): the switch is all it needs and keeps this file independent of
  // dataset.cpp.
  switch (split) {
    case SplitKind::kTrain:
      return dataset.train;
    case SplitKind::kQuery:
      return dataset.query;
    case SplitKind::kGallery:
      return dataset.gallery;
  }
  throw Error("EvalLoader: unknown split kind " + std::to_string(static_cast<int>(split)));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// BatchBufferPool

BatchBufferPool::~BatchBufferPool() {
  for (const Buffer& b : free_) std::free(b.data);
}

torch::Tensor BatchBufferPool::empty(at::IntArrayRef sizes) {
  std::size_t bytes = sizeof(float);
  for (const std::int64_t s : sizes) bytes *= static_cast<std::size_t>(s);
  Buffer buffer;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto fit =
        std::find_if(free_.begin(), free_.end(), [&](const Buffer& b) { return b.bytes >= bytes; });
    if (fit != free_.end()) {
      buffer = *fit;
      free_.erase(fit);
    }
  }
  if (!buffer.data) {
    // 64-byte alignment like LibTorch's own CPU allocator (aligned_alloc needs a multiple).
    buffer.bytes = (std::max<std::size_t>(bytes, 1) + 63) / 64 * 64;
    buffer.data = std::aligned_alloc(64, buffer.bytes);
    if (!buffer.data) throw std::bad_alloc();
  }
  auto self = shared_from_this();
  return torch::from_blob(
      buffer.data, sizes, [self, buffer](void*) { self->give_back(buffer); }, torch::kFloat32);
}

void BatchBufferPool::give_back(Buffer buffer) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (free_.size() < max_free_) {
      free_.push_back(buffer);
      return;
    }
  }
  std::free(buffer.data);
}

std::size_t BatchBufferPool::free_buffers() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return free_.size();
}

// ---------------------------------------------------------------------------------------------
// ReidImageDataset

ReidImageDataset::ReidImageDataset(std::shared_ptr<const SplitSource> source,
                                   std::shared_ptr<const Transform> transform,
                                   std::size_t pooled_buffers)
    : source_(std::move(source)),
      transform_(std::move(transform)),
      pool_(std::make_shared<BatchBufferPool>(pooled_buffers)),
      loaded_(std::make_shared<std::atomic<std::int64_t>>(0)) {}

torch::optional<std::size_t> ReidImageDataset::size() const { return source_->records.size(); }

Batch ReidImageDataset::get_batch(BatchPlan request) {
  const auto n = static_cast<std::int64_t>(request.size());
  Batch batch;
  // Filled row by row: no per-sample tensor and no torch::stack copy.
  batch.images = pool_->empty({n, 3, transform_->height(), transform_->width()});
  batch.labels = torch::empty({n}, torch::kInt64);
  batch.pids = torch::empty({n}, torch::kInt64);
  batch.camids = torch::empty({n}, torch::kInt64);
  batch.indices = torch::empty({n}, torch::kInt64);
  auto labels = batch.labels.accessor<std::int64_t, 1>();
  auto pids = batch.pids.accessor<std::int64_t, 1>();
  auto camids = batch.camids.accessor<std::int64_t, 1>();
  auto indices = batch.indices.accessor<std::int64_t, 1>();

  for (std::int64_t i = 0; i < n; ++i) {
    const SampleRequest& sample = request[static_cast<std::size_t>(i)];
    if (sample.index >= source_->records.size())
      throw Error("loader: sample index " + std::to_string(sample.index) +
                  " is outside the split (" + std::to_string(source_->records.size()) +
                  " images); the sampler was built for another split");
    const ImageRecord& record = source_->records[sample.index];
    const std::filesystem::path path = source_->root / record.path;
    const cv::Mat image = util::decode_image(path);  // its errors name the path already
    try {
      util::Rng rng(sample.seed);
      torch::Tensor row = batch.images[i];
      transform_->apply(image, rng, row);
    } catch (const std::exception& e) {
      throw Error("cannot transform image '" + path.string() + "': " + e.what());
    }
    labels[i] = record.label;
    pids[i] = record.pid;
    camids[i] = record.camid;
    indices[i] = static_cast<std::int64_t>(sample.index);
  }
  loaded_->fetch_add(1);
  return batch;
}

// ---------------------------------------------------------------------------------------------
// Samplers

PkBatchSampler::PkBatchSampler(std::shared_ptr<const PkSampler> sampler, int epoch,
                               int shard_index, int shard_count)
    : sampler_(std::move(sampler)),
      shard_index_(shard_index),
      shard_count_(shard_count),
      epoch_(epoch),
      plan_(plan(epoch)) {}

std::vector<BatchPlan> PkBatchSampler::plan(int epoch) const {
  std::vector<BatchPlan> batches = sampler_->epoch(epoch);
  if (shard_count_ > 1) {
    // Whole identities per shard: the plan keeps an identity's K images consecutive.
    const auto per_shard = static_cast<std::ptrdiff_t>(sampler_->batch_size() / shard_count_);
    for (BatchPlan& batch : batches) {
      const auto first = batch.begin() + per_shard * shard_index_;
      batch = BatchPlan(first, first + per_shard);
    }
  }
  return batches;
}

void PkBatchSampler::reset(torch::optional<std::size_t> /*new_size*/) { cursor_ = 0; }

torch::optional<BatchPlan> PkBatchSampler::next(std::size_t /*batch_size*/) {
  if (cursor_ >= plan_.size()) return torch::nullopt;
  return plan_[cursor_++];
}

void PkBatchSampler::save(torch::serialize::OutputArchive& archive) const {
  archive.write("epoch", torch::tensor(static_cast<std::int64_t>(epoch_)), /*is_buffer=*/true);
  archive.write("cursor", torch::tensor(static_cast<std::int64_t>(cursor_)), /*is_buffer=*/true);
}

void PkBatchSampler::load(torch::serialize::InputArchive& archive) {
  torch::Tensor epoch;
  torch::Tensor cursor;
  archive.read("epoch", epoch, /*is_buffer=*/true);
  archive.read("cursor", cursor, /*is_buffer=*/true);
  epoch_ = static_cast<int>(epoch.item<std::int64_t>());
  plan_ = plan(epoch_);
  cursor_ = std::min(static_cast<std::size_t>(cursor.item<std::int64_t>()), plan_.size());
}

void SequentialBatchSampler::reset(torch::optional<std::size_t> new_size) {
  if (new_size) size_ = *new_size;
  cursor_ = 0;
}

torch::optional<BatchPlan> SequentialBatchSampler::next(std::size_t batch_size) {
  if (cursor_ >= size_ || batch_size == 0) return torch::nullopt;
  BatchPlan plan;
  const std::size_t end = std::min(size_, cursor_ + batch_size);
  plan.reserve(end - cursor_);
  for (; cursor_ < end; ++cursor_) plan.push_back({cursor_, static_cast<std::uint64_t>(cursor_)});
  return plan;
}

void SequentialBatchSampler::save(torch::serialize::OutputArchive& archive) const {
  archive.write("size", torch::tensor(static_cast<std::int64_t>(size_)), /*is_buffer=*/true);
  archive.write("cursor", torch::tensor(static_cast<std::int64_t>(cursor_)), /*is_buffer=*/true);
}

void SequentialBatchSampler::load(torch::serialize::InputArchive& archive) {
  torch::Tensor size;
  torch::Tensor cursor;
  archive.read("size", size, /*is_buffer=*/true);
  archive.read("cursor", cursor, /*is_buffer=*/true);
  size_ = static_cast<std::size_t>(size.item<std::int64_t>());
  cursor_ = std::min(static_cast<std::size_t>(cursor.item<std::int64_t>()), size_);
}

// ---------------------------------------------------------------------------------------------
// One pass of torch's DataLoader over a sampler, consumed one batch at a time.

// Named rather than anonymous: the loaders' Running states (external linkage) derive from it.
namespace loader_detail {

template <typename Sampler>
class Pass {
 public:
  Pass(ReidImageDataset dataset, Sampler sampler, std::size_t batch_size, int workers,
       int prefetch) {
    auto options = torch::data::DataLoaderOptions()
                       .batch_size(batch_size)
                       .workers(static_cast<std::size_t>(workers))
                       .enforce_ordering(true);
    // torch's reset() pushes max_jobs requests into the worker queue even when there are no
    // workers, and those requests would never be served; only set it when workers exist.
    if (workers > 0) options.max_jobs(static_cast<std::size_t>(prefetch));
    loader_ = torch::data::make_data_loader(std::move(dataset), std::move(sampler), options);
    // begin() resets the sampler and queues the first `prefetch` batches right away.
    it_.emplace(loader_->begin());
  }

  std::optional<Batch> next() {
    if (done_) return std::nullopt;
    try {
      // The iterator holds the batch last returned; advance only when asked for the next one
      // so the consumer never waits for batch i+1 before receiving batch i.
      if (started_) ++*it_;
      const bool at_end = (*it_ == loader_->end());
      started_ = true;
      if (at_end) {
        done_ = true;
        return std::nullopt;
      }
      return std::move(**it_);
    } catch (const torch::data::WorkerException& e) {
      // Surface the worker's own exception (a ppreid::Error naming the image), not torch's
      // generic wrapper.
      std::rethrow_exception(e.original_exception);
    }
  }

 private:
  using Loader = torch::data::StatelessDataLoader<ReidImageDataset, Sampler>;
  // Declared before it_ so it is destroyed after it: ~Loader joins the workers, waiting only
  // for the batches they are decoding (queued requests are dropped).
  std::unique_ptr<Loader> loader_;
  std::optional<torch::data::Iterator<Batch>> it_;
  bool started_ = false;
  bool done_ = false;
};

}  // namespace loader_detail
using loader_detail::Pass;

// ---------------------------------------------------------------------------------------------
// TrainLoader

struct TrainLoader::Running : Pass<PkBatchSampler> {
  using Pass<PkBatchSampler>::Pass;
};

namespace {

std::shared_ptr<const PkSampler> make_pk(const Dataset& dataset, const LoaderOptions& options) {
  check_loader_counts("loader", options.workers, options.prefetch_batches);
  if (options.shard_count < 1 || options.shard_index < 0 ||
      options.shard_index >= options.shard_count)
    throw Error("loader shard " + std::to_string(options.shard_index) + " of " +
                std::to_string(options.shard_count) + " does not exist (rank outside world size)");
  if (options.shard_count > 1 && dataset.num_train_ids < options.p * options.shard_count)
    throw Error("data-parallel training over " + std::to_string(options.shard_count) +
                " ranks draws W x P = " + std::to_string(options.p * options.shard_count) +
                " distinct identities per step, but the train split of '" +
                dataset.root.string() + "' has " + std::to_string(dataset.num_train_ids) +
                "; lower loader.p or the world size");
  return std::make_shared<const PkSampler>(dataset.train, options.p * options.shard_count,
                                           options.k, options.seed);
}

}  // namespace

TrainLoader::TrainLoader(const Dataset& dataset, TransformOptions transform, LoaderOptions options)
    : options_(options),
      pk_(make_pk(dataset, options)),
      dataset_(std::make_shared<const SplitSource>(SplitSource{dataset.root, dataset.train}),
               std::make_shared<const TrainTransform>(transform),
               pooled_buffers(options.workers, options.prefetch_batches)),
      batches_per_epoch_(pk_->batches_in_epoch(0)) {}

TrainLoader::~TrainLoader() = default;

void TrainLoader::start_epoch(int epoch) {
  // A fresh DataLoader per epoch: torch's begin() refuses to restart while batches are in
  // flight, and starting two worker threads costs microseconds against an epoch's seconds.
  running_.reset();
  PkBatchSampler sampler(pk_, epoch, options_.shard_index, options_.shard_count);
  batches_per_epoch_ = static_cast<int>(sampler.num_batches());
  epoch_ = epoch;
  running_ = std::make_unique<Running>(dataset_, std::move(sampler),
                                       static_cast<std::size_t>(pk_->batch_size()),
                                       options_.workers, options_.prefetch_batches);
}

std::optional<Batch> TrainLoader::next() {
  if (!running_)
    throw Error("TrainLoader::next() called before start_epoch(); call start_epoch(epoch) first");
  return running_->next();
}

// ---------------------------------------------------------------------------------------------
// EvalLoader

struct EvalLoader::Running : Pass<SequentialBatchSampler> {
  using Pass<SequentialBatchSampler>::Pass;
};

EvalLoader::EvalLoader(const Dataset& dataset, SplitKind split, TransformOptions transform,
                       EvalLoaderOptions options)
    : EvalLoader(dataset.root, records_of(dataset, split), transform, options) {}

EvalLoader::EvalLoader(std::filesystem::path root, std::vector<ImageRecord> records,
                       TransformOptions transform, EvalLoaderOptions options)
    : options_(options),
      source_(
          std::make_shared<const SplitSource>(SplitSource{std::move(root), std::move(records)})),
      dataset_(source_, std::make_shared<const TestTransform>(transform),
               pooled_buffers(options.workers, options.prefetch_batches)) {
  if (options_.batch_size < 1)
    throw Error("eval.batch_size must be >= 1, got " + std::to_string(options_.batch_size));
  check_loader_counts("eval", options_.workers, options_.prefetch_batches);
  restart();
}

EvalLoader::~EvalLoader() = default;

void EvalLoader::restart() {
  running_.reset();
  running_ = std::make_unique<Running>(dataset_, SequentialBatchSampler(source_->records.size()),
                                       static_cast<std::size_t>(options_.batch_size),
                                       options_.workers, options_.prefetch_batches);
}

std::optional<Batch> EvalLoader::next() { return running_->next(); }

int EvalLoader::num_batches() const {
  const auto n = source_->records.size();
  const auto b = static_cast<std::size_t>(options_.batch_size);
  return static_cast<int>((n + b - 1) / b);
}

}  // namespace ppreid::data
