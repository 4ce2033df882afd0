#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/data/dataset.h"

namespace ppreid::data {

// One image to load: its position in the split and the seed of its augmentation. Carrying the
// seed with the request makes a sample's augmentation independent of which worker decodes it.
struct SampleRequest {
  std::size_t index = 0;
  std::uint64_t seed = 0;
  bool operator==(const SampleRequest&) const = default;
};

using BatchPlan = std::vector<SampleRequest>;

// P x K identity sampler over the train split, the algorithm of torchreid's and BoT's
// RandomIdentitySampler: at the start of an epoch every identity's images are shuffled and cut
// into chunks of K (an identity with fewer than K images becomes one chunk drawn with
// replacement; leftovers smaller than K are dropped). Each batch then takes P distinct
// identities uniformly among those with chunks left and one chunk from each. The epoch ends
// when fewer than P identities have chunks left, so an epoch sees (almost) every image once.
// The plan is a pure function of (records, p, k, seed, epoch).
class PkSampler {
 public:
  // Groups records by `label` (contiguous train labels). Throws ppreid::Error when p or k is
  // not positive, a record has no label, or there are fewer than p identities.
  PkSampler(const std::vector<ImageRecord>& train, int p, int k, std::uint64_t seed);

  // All batches of one epoch, each P*K requests grouped by identity (K consecutive).
  std::vector<BatchPlan> epoch(int epoch) const;

  int p() const { return p_; }
  int k() const { return k_; }
  int batch_size() const { return p_ * k_; }
  int num_identities() const { return static_cast<int>(groups_.size()); }
  // Batches in `epoch`. It can differ slightly between epochs: it depends on which
  // identities run out of chunks first.
  int batches_in_epoch(int epoch) const { return static_cast<int>(this->epoch(epoch).size()); }

 private:
  int p_;
  int k_;
  std::uint64_t seed_;
  std::vector<std::vector<std::size_t>> groups_;  // record indices per identity, label order
};

}  // namespace ppreid::data
