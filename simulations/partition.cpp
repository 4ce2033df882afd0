#include "simulations/partition.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <random>
#include <set>

#include "core/util/error.h"

namespace ppreid::sim {
namespace {

std::string site_name(std::size_t k) {
  std::string name = "site-";
  name += std::to_string(k + 1);
  return name;
}

// Parts from a key per image (municipality, camera or identity group), keys in ascending order.
std::vector<SitePart> group_by(const data::Dataset& d, const std::vector<int>& key_of_image) {
  std::map<int, SitePart> by_key;
  for (std::size_t i = 0; i < d.train.size(); ++i) by_key[key_of_image[i]].images.push_back(i);
  std::vector<SitePart> parts;
  for (auto& [key, part] : by_key) {
    std::set<int> pids;
    for (std::size_t i : part.images) pids.insert(d.train[i].pid);
    part.pids.assign(pids.begin(), pids.end());
    part.site_id = site_name(parts.size());
    parts.push_back(std::move(part));
  }
  return parts;
}

// Identity-group sizes summing to `ids`, each >= min_ids: equal, or Dirichlet(alpha) shares of
// what is left after the minimum (largest remainders get the rounding).
std::vector<int> group_sizes(int ids, const PartitionOptions& o, std::mt19937_64& rng) {
  const int n = o.sites;
  std::vector<double> share(n, 1.0 / n);
  if (o.kind == PartitionKind::kDirichlet) {
    std::gamma_distribution<double> gamma(o.alpha, 1.0);
    double total = 0;
    for (double& s : share) total += (s = gamma(rng));
    if (total <= 0) std::fill(share.begin(), share.end(), 1.0), total = n;
    for (double& s : share) s /= total;
  }
  const int free = ids - n * o.min_identities;
  std::vector<int> sizes(n);
  std::vector<std::pair<double, int>> remainders;
  int given = 0;
  for (int k = 0; k < n; ++k) {
    const double exact = share[k] * free;
    sizes[k] = o.min_identities + static_cast<int>(exact);
    given += static_cast<int>(exact);
    remainders.emplace_back(exact - static_cast<int>(exact), k);
  }
  std::sort(remainders.begin(), remainders.end(), std::greater<>());
  for (int r = 0; r < free - given; ++r) ++sizes[remainders[r].second];
  return sizes;
}

}  // namespace

std::string_view to_string(PartitionKind kind) {
  switch (kind) {
    case PartitionKind::kMunicipality: return "municipality";
    case PartitionKind::kCamera: return "camera";
    case PartitionKind::kIdentity: return "identity";
    case PartitionKind::kDirichlet: return "dirichlet";
  }
  return "?";
}

PartitionKind partition_kind_from_string(std::string_view name) {
  for (auto k : {PartitionKind::kMunicipality, PartitionKind::kCamera, PartitionKind::kIdentity,
                 PartitionKind::kDirichlet})
    if (to_string(k) == name) return k;
  throw Error("unknown partition '" + std::string(name) +
              "'; use municipality, camera, identity or dirichlet");
}

std::vector<SitePart> partition_train(const data::Dataset& d, const PartitionOptions& o) {
  if (d.train.empty()) throw Error("partition: '" + d.root.string() + "' has no train images");
  std::vector<int> key(d.train.size());
  switch (o.kind) {
    case PartitionKind::kMunicipality: {
      if (d.camera_municipality.empty())
        throw Error("partition by municipality: '" + d.root.string() +
                    "' has no municipalities.csv; partition by camera or identity instead");
      for (std::size_t i = 0; i < d.train.size(); ++i) {
        auto it = d.camera_municipality.find(d.train[i].camid);
        if (it == d.camera_municipality.end())
          throw Error("partition by municipality: camera " + std::to_string(d.train[i].camid + 1) +
                      " of '" + d.train[i].path + "' is not in municipalities.csv");
        key[i] = it->second;
      }
      return group_by(d, key);
    }
    case PartitionKind::kCamera:
      for (std::size_t i = 0; i < d.train.size(); ++i) key[i] = d.train[i].camid;
      return group_by(d, key);
    case PartitionKind::kIdentity:
    case PartitionKind::kDirichlet: {
      if (o.kind == PartitionKind::kDirichlet && !(o.alpha > 0))
        throw Error("partition dirichlet: alpha must be > 0, got " + std::to_string(o.alpha));
      std::set<int> pid_set;
      for (const auto& r : d.train) pid_set.insert(r.pid);
      std::vector<int> pids(pid_set.begin(), pid_set.end());
      if (o.sites < 1 || o.min_identities < 1 ||
          static_cast<long>(o.sites) * o.min_identities > static_cast<long>(pids.size()))
        throw Error("partition by " + std::string(to_string(o.kind)) + ": " +
                    std::to_string(o.sites) + " sites of at least " +
                    std::to_string(o.min_identities) + " identities need more than the " +
                    std::to_string(pids.size()) + " train identities of '" + d.root.string() +
                    "'; use fewer sites");
      std::mt19937_64 rng(o.seed);
      std::shuffle(pids.begin(), pids.end(), rng);
      const std::vector<int> sizes = group_sizes(static_cast<int>(pids.size()), o, rng);
      std::map<int, int> group_of;
      std::size_t next = 0;
      for (int k = 0; k < o.sites; ++k)
        for (int j = 0; j < sizes[k]; ++j) group_of[pids[next++]] = k;
      for (std::size_t i = 0; i < d.train.size(); ++i) key[i] = group_of.at(d.train[i].pid);
      return group_by(d, key);
    }
  }
  return {};
}

}  // namespace ppreid::sim
