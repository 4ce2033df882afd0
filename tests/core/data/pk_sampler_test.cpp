#include "core/data/pk_sampler.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "core/util/error.h"

namespace ppreid::data {
namespace {

// `counts[label]` train images for each label, in label order.
std::vector<ImageRecord> records_with(const std::vector<int>& counts) {
  std::vector<ImageRecord> records;
  for (int label = 0; label < static_cast<int>(counts.size()); ++label)
    for (int i = 0; i < counts[label]; ++i) {
      ImageRecord r;
      r.path = "bounding_box_train/" + std::to_string(label) + "_" + std::to_string(i) + ".jpg";
      r.pid = 100 + label;
      r.label = label;
      r.camid = i % 6;
      records.push_back(r);
    }
  return records;
}

TEST(PkSampler, EveryBatchHasPDistinctIdentitiesWithKImagesEach) {
  // Small identities (2, 3 images < K) mixed with large ones (up to 11).
  const std::vector<int> counts = {2, 3, 4, 5, 8, 11, 4, 6, 9, 2, 7, 10};
  const auto records = records_with(counts);
  const int p = 4, k = 4;
  const PkSampler sampler(records, p, k, 7);
  for (int epoch = 0; epoch < 5; ++epoch) {
    const auto batches = sampler.epoch(epoch);
    ASSERT_FALSE(batches.empty());
    std::set<std::size_t> used_from_large;
    for (const auto& batch : batches) {
      ASSERT_EQ(batch.size(), static_cast<std::size_t>(p * k));
      std::map<int, std::vector<std::size_t>> by_label;
      for (std::size_t s = 0; s < batch.size(); ++s) {
        const int label = records[batch[s].index].label;
        // Grouped: K consecutive requests per identity.
        EXPECT_EQ(label, records[batch[s - s % k].index].label);
        by_label[label].push_back(batch[s].index);
      }
      ASSERT_EQ(by_label.size(), static_cast<std::size_t>(p)) << "identity repeated in a batch";
      for (const auto& [label, indices] : by_label) {
        EXPECT_EQ(indices.size(), static_cast<std::size_t>(k));
        const std::set<std::size_t> distinct(indices.begin(), indices.end());
        if (counts[label] >= k) {
          EXPECT_EQ(distinct.size(), indices.size()) << "replacement for a large identity";
          // Without replacement across the whole epoch too.
          for (std::size_t i : indices) EXPECT_TRUE(used_from_large.insert(i).second);
        } else {
          EXPECT_LT(distinct.size(), indices.size());  // 2 or 3 images fill 4 slots
        }
      }
    }
  }
}

TEST(PkSampler, HandComputedEpochLength) {
  // 8 identities with exactly K images: one chunk each, P=4 -> exactly 2 batches covering every
  // image once.
  const auto records = records_with(std::vector<int>(8, 3));
  const PkSampler sampler(records, 4, 3, 1);
  const auto batches = sampler.epoch(0);
  ASSERT_EQ(batches.size(), 2u);
  std::set<std::size_t> seen;
  for (const auto& b : batches)
    for (const auto& r : b) EXPECT_TRUE(seen.insert(r.index).second);
  EXPECT_EQ(seen.size(), records.size());

  // 3 identities of 9 images, K=4: two chunks each (one image dropped per identity), P=3 ->
  // every batch takes all three, 2 batches.
  const PkSampler nine(records_with({9, 9, 9}), 3, 4, 1);
  EXPECT_EQ(nine.batches_in_epoch(0), 2);
  EXPECT_EQ(nine.num_identities(), 3);
  EXPECT_EQ(nine.batch_size(), 12);
}

TEST(PkSampler, DeterministicPerSeedAndEpoch) {
  const auto records = records_with({3, 5, 8, 4, 6, 7, 2, 9});
  const PkSampler a(records, 2, 4, 11);
  const PkSampler b(records, 2, 4, 11);
  const PkSampler other_seed(records, 2, 4, 12);
  EXPECT_EQ(a.epoch(3), b.epoch(3));
  EXPECT_NE(a.epoch(3), a.epoch(4));
  EXPECT_NE(a.epoch(3), other_seed.epoch(3));
}

TEST(PkSampler, SampleSeedsAreDistinctWithinAndAcrossEpochs) {
  const PkSampler sampler(records_with({4, 4, 4, 4, 8, 8}), 2, 4, 3);
  std::set<std::uint64_t> seeds;
  std::size_t total = 0;
  for (int epoch = 0; epoch < 3; ++epoch)
    for (const auto& batch : sampler.epoch(epoch))
      for (const auto& r : batch) {
        seeds.insert(r.seed);
        ++total;
      }
  EXPECT_EQ(seeds.size(), total);
}

TEST(PkSampler, TooFewIdentitiesNamesTheFix) {
  const auto records = records_with(std::vector<int>(9, 4));
  try {
    PkSampler sampler(records, 16, 4, 1);
    FAIL() << "expected ppreid::Error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "P=16 but the train split has only 9 identities; lower loader.p");
  }
  EXPECT_NO_THROW(PkSampler(records, 9, 4, 1));
}

TEST(PkSampler, RejectsBadArguments) {
  const auto records = records_with({4, 4});
  EXPECT_THROW(PkSampler(records, 0, 4, 1), Error);
  EXPECT_THROW(PkSampler(records, 2, 0, 1), Error);
  auto unlabeled = records;
  unlabeled[1].label = -1;
  try {
    PkSampler sampler(unlabeled, 1, 1, 1);
    FAIL() << "expected ppreid::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(unlabeled[1].path), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ppreid::data
