#include "simulations/partition.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "core/data/synth/generator.h"
#include "core/util/error.h"
#include "tests/support/errors.h"
#include "tests/support/synth.h"
#include "tests/support/temp_dir.h"

namespace ppreid::sim {
namespace {

using ::testing::HasSubstr;

class PartitionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    auto o = testing::small_synth(24, 4, 4, 32, 16, 5);  // 12 train identities
    o.municipalities = 2;
    data::synth::generate(o, *dir_ / "city");
    data_ = new data::Dataset(data::load_dataset(*dir_ / "city"));
  }
  static void TearDownTestSuite() {
    delete data_;
    delete dir_;
  }
  static testing::TempDir* dir_;
  static data::Dataset* data_;
};
testing::TempDir* PartitionTest::dir_ = nullptr;
data::Dataset* PartitionTest::data_ = nullptr;

struct Case {
  const char* name;
  PartitionOptions options;
  std::size_t sites;
  bool disjoint_identities;
};

TEST_F(PartitionTest, PartsAreDisjointAndCoverTheTrainSplit) {
  const std::vector<Case> cases = {
      {"municipality", {PartitionKind::kMunicipality, 0}, 2, true},
      {"camera", {PartitionKind::kCamera, 0}, 4, false},
      {"identity", {PartitionKind::kIdentity, 3}, 3, true},
      {"dirichlet", {PartitionKind::kDirichlet, 3, 0.3}, 3, true},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto parts = partition_train(*data_, c.options);
    ASSERT_EQ(parts.size(), c.sites);
    std::vector<int> owner(data_->train.size(), -1);
    std::set<int> seen_pids;
    std::size_t pid_total = 0;
    for (std::size_t k = 0; k < parts.size(); ++k) {
      EXPECT_EQ(parts[k].site_id, "site-" + std::to_string(k + 1));
      EXPECT_FALSE(parts[k].images.empty());
      for (std::size_t i : parts[k].images) {
        ASSERT_LT(i, owner.size());
        EXPECT_EQ(owner[i], -1) << "image " << i << " in two sites";
        owner[i] = static_cast<int>(k);
        EXPECT_TRUE(std::binary_search(parts[k].pids.begin(), parts[k].pids.end(),
                                       data_->train[i].pid));
      }
      seen_pids.insert(parts[k].pids.begin(), parts[k].pids.end());
      pid_total += parts[k].pids.size();
    }
    EXPECT_EQ(std::count(owner.begin(), owner.end(), -1), 0) << "an image in no site";
    if (c.disjoint_identities) {
      EXPECT_EQ(pid_total, seen_pids.size());
    }
    EXPECT_EQ(seen_pids.size(), static_cast<std::size_t>(data_->num_train_ids));
    // Same options, same parts.
    auto again = partition_train(*data_, c.options);
    for (std::size_t k = 0; k < parts.size(); ++k) EXPECT_EQ(again[k].images, parts[k].images);
  }
}

TEST_F(PartitionTest, IdentityGroupsAreEvenAndDirichletOnesRespectTheMinimum) {
  auto even = partition_train(*data_, {PartitionKind::kIdentity, 5, 0.5, 2, 9});
  std::vector<std::size_t> sizes;
  for (const auto& p : even) sizes.push_back(p.pids.size());
  EXPECT_EQ(*std::max_element(sizes.begin(), sizes.end()) -
                *std::min_element(sizes.begin(), sizes.end()),
            1u);  // 12 identities over 5 sites: 3, 3, 2, 2, 2
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    auto skewed = partition_train(*data_, {PartitionKind::kDirichlet, 4, 0.1, 2, seed});
    std::size_t total = 0;
    for (const auto& p : skewed) {
      EXPECT_GE(p.pids.size(), 2u);
      total += p.pids.size();
    }
    EXPECT_EQ(total, 12u);
  }
}

TEST_F(PartitionTest, ImpossibleRequestsAreClearErrors) {
  EXPECT_THAT(testing::error_of([] {
                partition_train(*data_, {PartitionKind::kIdentity, 7, 0.5, 2, 1});
              }),
              HasSubstr("use fewer sites"));
  EXPECT_THAT(testing::error_of([] {
                partition_train(*data_, {PartitionKind::kDirichlet, 2, 0.0, 2, 1});
              }),
              HasSubstr("alpha must be > 0"));
  EXPECT_THROW(partition_kind_from_string("by-city"), Error);
  EXPECT_EQ(partition_kind_from_string("dirichlet"), PartitionKind::kDirichlet);
}

}  // namespace
}  // namespace ppreid::sim
