#include "simulations/population.h"

#include <set>

#include <nlohmann/json.hpp>

#include "core/data/synth/generator.h"
#include "core/util/atomic_dir.h"
#include "core/util/atomic_file.h"
#include "core/util/error.h"
#include "protocols/keys.h"

namespace ppreid::sim {
namespace fs = std::filesystem;
namespace {

nlohmann::json describe(const data::synth::SynthOptions& o) {
  return {{"ids", o.ids},
          {"cameras", o.cameras},
          {"images_per_id", o.images_per_id},
          {"height", o.height},
          {"width", o.width},
          {"municipalities", o.municipalities},
          {"distractors", o.distractors},
          {"junk", o.junk},
          {"lookalike_fraction", o.lookalike_fraction},
          {"jpeg_quality", o.jpeg_quality},
          {"seed", o.seed}};
}

void link_or_copy(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::create_hard_link(from, to, ec);
  if (ec) fs::copy_file(from, to, fs::copy_options::overwrite_existing);
}

void copy_side_files(const fs::path& from, const fs::path& to) {
  for (const char* name : {"keypoints.csv", "attributes.csv", "municipalities.csv"})
    if (fs::exists(from / name)) link_or_copy(from / name, to / name);
}

// Builds `dir` in a sibling and renames it into place, so an interrupted run leaves either no
// directory or a complete one.
template <class Fill>
void build_dir(const fs::path& dir, Fill fill) {
  if (fs::exists(dir)) return;
  std::string hidden = ".";  // appended, not concatenated: GCC 12 warns falsely on a + b + c
  hidden += dir.filename().string();
  hidden += ".partial";
  const fs::path tmp = dir.parent_path() / hidden;
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  fill(tmp);
  util::sync_directory(tmp);
  fs::rename(tmp, dir);
  util::sync_directory(dir.parent_path());
}

}  // namespace

Population prepare_population(const SimConfig& config, const fs::path& out) {
  Population pop;
  const fs::path data_dir = out / "data";
  fs::create_directories(data_dir);
  pop.raw = data_dir / "raw";
  data::synth::SynthOptions synth = config.profile.synth;
  synth.threads = config.threads;
  const fs::path described = data_dir / "population.json";
  const nlohmann::json wanted = {{"synth", describe(synth)},
                                 {"partition",
                                  {{"kind", std::string(to_string(config.partition.kind))},
                                   {"sites", config.partition.sites},
                                   {"alpha", config.partition.alpha},
                                   {"min_identities", config.partition.min_identities},
                                   {"seed", config.partition.seed}}}};
  if (fs::exists(described) && nlohmann::json::parse(util::read_file(described)) != wanted) {
    throw Error("'" + data_dir.string() + "' holds a population made with other data or partition "
                "settings than '" + config.file.string() + "'; use another --out");
  }
  if (!fs::exists(described)) {
    // Nothing complete yet: start from scratch (a crash may have left half a partition).
    fs::remove_all(pop.raw);
    fs::remove_all(data_dir / "sites");
    fs::remove_all(data_dir / "test");
  }
  if (!fs::exists(pop.raw)) data::synth::generate(synth, pop.raw);
  const data::Dataset ds = data::load_dataset(pop.raw);

  std::vector<SitePart> parts;
  try {
    parts = partition_train(ds, config.partition);
  } catch (const Error& e) {
    throw Error(config.file.string() + ": partition: " + e.what());
  }
  fs::create_directories(data_dir / "sites");
  for (const SitePart& part : parts) {
    SiteData site;
    site.site_id = part.site_id;
    site.raw = data_dir / "sites" / part.site_id / "raw";
    fs::create_directories(site.raw.parent_path());
    build_dir(site.raw, [&](const fs::path& dir) {
      fs::create_directories(dir / data::split_dir(data::SplitKind::kTrain));
      for (std::size_t i : part.images)
        link_or_copy(ds.absolute(ds.train[i]), dir / ds.train[i].path);
      copy_side_files(pop.raw, dir);
    });
    std::set<int> cameras;
    for (std::size_t i : part.images) cameras.insert(ds.train[i].camid);
    site.images = part.images.size();
    site.identities = part.pids.size();
    site.cameras = cameras.size();
    pop.sites.push_back(site);
  }

  pop.test = data_dir / "test";
  build_dir(pop.test, [&](const fs::path& dir) {
    for (auto kind : {data::SplitKind::kQuery, data::SplitKind::kGallery}) {
      fs::create_directories(dir / data::split_dir(kind));
      for (const auto& r : ds.split(kind)) link_or_copy(ds.absolute(r), dir / r.path);
    }
    copy_side_files(pop.raw, dir);
  });
  std::set<int> test_ids;
  for (const auto& r : ds.query) test_ids.insert(r.pid);
  pop.test_queries = ds.query.size();
  pop.test_gallery = ds.gallery.size();
  pop.test_identities = test_ids.size();
  if (!fs::exists(described)) util::write_file_atomic(described, wanted.dump(2) + "\n");
  return pop;
}

fs::path SimKeys::site_key(const std::string& site) const { return dir / (site + ".key"); }

SimKeys prepare_keys(const fs::path& out, const std::vector<SiteData>& sites) {
  SimKeys keys;
  keys.dir = out / "keys";
  keys.allow_list = keys.dir / "allow";
  fs::create_directories(keys.allow_list);
  fs::permissions(keys.dir, fs::perms::owner_all, fs::perm_options::replace);
  keys.aggregator_key = keys.dir / "aggregator.key";
  keys.aggregator_pub = keys.dir / "aggregator.pub";
  if (!fs::exists(keys.aggregator_key)) proto::write_keypair(keys.dir / "aggregator");
  for (const auto& s : sites) {
    if (!fs::exists(keys.site_key(s.site_id))) proto::write_keypair(keys.dir / s.site_id);
    const fs::path listed = keys.allow_list / (s.site_id + ".pub");
    if (!fs::exists(listed)) fs::copy_file(keys.dir / (s.site_id + ".pub"), listed);
  }
  return keys;
}

}  // namespace ppreid::sim
