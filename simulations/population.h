#pragma once

// The data and keys of a simulation, made once per output directory and shared by every
// federation of an experiment: one synthetic population, its train split partitioned into site
// datasets (raw, never shared), a held-out test split of unseen identities, and CURVE keys.

#include <filesystem>
#include <string>
#include <vector>

#include "core/data/dataset.h"
#include "simulations/partition.h"
#include "simulations/sim_config.h"

namespace ppreid::sim {

struct SiteData {
  std::string site_id;
  std::filesystem::path raw;  // Market layout: bounding_box_train/ and the side files
  std::size_t images = 0;
  std::size_t identities = 0;
  std::size_t cameras = 0;
};

struct Population {
  std::filesystem::path raw;   // the whole generated dataset
  std::filesystem::path test;  // query/ and bounding_box_test/ of the unseen test identities
  std::vector<SiteData> sites;
  std::size_t test_queries = 0, test_gallery = 0, test_identities = 0;
};

// OUT/data/raw (generated unless present with the same options), OUT/data/sites/<id>/raw (hard
// links into it, copies where the filesystem refuses links), OUT/data/test. Throws
// ppreid::Error when the partition is impossible (names the config).
Population prepare_population(const SimConfig& config, const std::filesystem::path& out);

struct SimKeys {
  std::filesystem::path aggregator_key, aggregator_pub;  // OUT/keys/aggregator.{key,pub}
  std::filesystem::path allow_list;                      // OUT/keys/allow/<site>.pub
  std::filesystem::path site_key(const std::string& site) const;  // OUT/keys/<site>.key
  std::filesystem::path dir;
};

// Fresh CURVE keys for the run (kept when present, so a resumed run keeps its federation).
SimKeys prepare_keys(const std::filesystem::path& out, const std::vector<SiteData>& sites);

}  // namespace ppreid::sim
