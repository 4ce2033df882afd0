#include "core/data/pk_sampler.h"

#include <algorithm>
#include <map>
#include <string>
#include <utility>

#include "core/util/error.h"
#include "core/util/rng.h"

namespace ppreid::data {
namespace {

// Fisher-Yates on util::Rng rather than std::shuffle, whose algorithm is left to the library.
void shuffle(std::vector<std::size_t>& v, util::Rng& rng) {
  for (std::size_t i = v.size(); i > 1; --i) {
    const auto j = static_cast<std::size_t>(rng.uniform_int(0, static_cast<std::int64_t>(i) - 1));
    std::swap(v[i - 1], v[j]);
  }
}

}  // namespace

PkSampler::PkSampler(const std::vector<ImageRecord>& train, int p, int k, std::uint64_t seed)
    : p_(p), k_(k), seed_(seed) {
  if (p <= 0) throw Error("loader.p must be > 0 identities per batch, got " + std::to_string(p));
  if (k <= 0) throw Error("loader.k must be > 0 images per identity, got " + std::to_string(k));
  std::map<int, std::vector<std::size_t>> by_label;
  for (std::size_t i = 0; i < train.size(); ++i) {
    if (train[i].label < 0)
      throw Error("train record '" + train[i].path +
                  "' has no label (-1); the P x K sampler needs the train split with contiguous "
                  "labels as load_dataset produces");
    by_label[train[i].label].push_back(i);
  }
  groups_.reserve(by_label.size());
  for (auto& [label, indices] : by_label) groups_.push_back(std::move(indices));
  if (static_cast<int>(groups_.size()) < p)
    throw Error("P=" + std::to_string(p) + " but the train split has only " +
                std::to_string(groups_.size()) + " identities; lower loader.p");
}

std::vector<BatchPlan> PkSampler::epoch(int epoch) const {
  // Two independent streams per epoch: one for the plan, one for the augmentation seeds, so
  // changing how the plan is drawn never silently changes how samples are augmented.
  const auto e = static_cast<std::uint64_t>(static_cast<std::int64_t>(epoch));
  util::Rng rng(util::Rng::derive(seed_, 2 * e));
  const std::uint64_t augment_seed = util::Rng::derive(seed_, 2 * e + 1);
  const auto k = static_cast<std::size_t>(k_);

  std::vector<std::vector<std::size_t>> chunks(groups_.size());  // K per chunk, flattened
  for (std::size_t id = 0; id < groups_.size(); ++id) {
    const auto& group = groups_[id];
    if (group.size() < k) {
      chunks[id].resize(k);
      for (auto& slot : chunks[id])
        slot = group[static_cast<std::size_t>(
            rng.uniform_int(0, static_cast<std::int64_t>(group.size()) - 1))];
    } else {
      chunks[id] = group;
      shuffle(chunks[id], rng);
      chunks[id].resize(group.size() / k * k);
    }
  }

  std::vector<std::size_t> available(groups_.size());
  for (std::size_t id = 0; id < available.size(); ++id) available[id] = id;
  std::vector<std::size_t> next_chunk(groups_.size(), 0);
  const auto p = static_cast<std::size_t>(p_);

  std::vector<BatchPlan> batches;
  while (available.size() >= p) {
    // P distinct identities: a partial Fisher-Yates over the still-available ones.
    for (std::size_t j = 0; j < p; ++j) {
      const auto r = static_cast<std::size_t>(rng.uniform_int(
          static_cast<std::int64_t>(j), static_cast<std::int64_t>(available.size()) - 1));
      std::swap(available[j], available[r]);
    }
    BatchPlan batch;
    batch.reserve(p * k);
    for (std::size_t j = 0; j < p; ++j) {
      const std::size_t id = available[j];
      const std::size_t first = next_chunk[id]++ * k;
      for (std::size_t s = 0; s < k; ++s) {
        const std::uint64_t position = batches.size() * p * k + batch.size();
        batch.push_back({chunks[id][first + s], util::Rng::derive(augment_seed, position)});
      }
    }
    batches.push_back(std::move(batch));
    std::erase_if(available,
                  [&](std::size_t id) { return next_chunk[id] * k >= chunks[id].size(); });
  }
  return batches;
}

}  // namespace ppreid::data
