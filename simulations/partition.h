#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/data/dataset.h"

namespace ppreid::sim {

// How a simulated federation splits one dataset's train split among its sites.
enum class PartitionKind {
  kMunicipality,  // one site per municipality (municipalities.csv); identities are disjoint
  kCamera,        // one site per camera; an identity seen by several cameras is at several sites
  kIdentity,      // N sites with disjoint identity groups of (nearly) equal size
  kDirichlet,     // N sites with disjoint identity groups, sizes ~ Dirichlet(alpha): skewed
};
std::string_view to_string(PartitionKind kind);  // "municipality", "camera", "identity", "dirichlet"
// Throws ppreid::Error listing the names.
PartitionKind partition_kind_from_string(std::string_view name);

struct PartitionOptions {
  PartitionKind kind = PartitionKind::kIdentity;
  int sites = 0;            // identity, dirichlet: how many (>= 1); the others derive it (0)
  double alpha = 0.5;       // dirichlet: smaller is more skewed
  int min_identities = 2;   // identity, dirichlet: at least this many per site (P x K batches)
  std::uint64_t seed = 1;
};

struct SitePart {
  std::string site_id;               // "site-1", ...
  std::vector<std::size_t> images;   // indices into dataset.train, ascending
  std::vector<int> pids;             // its identities, ascending
};

// Splits dataset.train. Every train image goes to exactly one site (the parts are disjoint and
// cover the split); identity and dirichlet parts are also disjoint in identities. The same
// options and dataset give the same parts. Throws ppreid::Error naming what is impossible (more
// sites than identities allow, no municipalities.csv, alpha <= 0).
std::vector<SitePart> partition_train(const data::Dataset& dataset,
                                      const PartitionOptions& options);

}  // namespace ppreid::sim
