#include "aggregator/state_store.h"

#include <spdlog/spdlog.h>

#include <array>
#include <chrono>
#include <ctime>
#include <fstream>
#include <unordered_map>

#include "core/reid/state_dict.h"
#include "core/util/atomic_dir.h"
#include "core/util/atomic_file.h"
#include "core/util/error.h"
#include "core/util/sha256.h"

namespace ppreid::agg {
namespace fs = std::filesystem;
namespace {

constexpr const char* kFormat = "ppreid-aggregator-state-v1";
constexpr const char* kManifest = "manifest.json";
constexpr const char* kGlobalFile = "global.pt";
constexpr const char* kStrategyFile = "strategy.pt";
constexpr const char* kSitesFile = "sites.json";


std::string utc_now() {
  std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

nlohmann::json describe(const NamedTensors& tensors) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& [name, t] : tensors)
    list.push_back({{"name", name}, {"dtype", c10::toString(t.scalar_type())}, {"shape", t.sizes().vec()}});
  return list;
}

// `loaded` in the order `listed` gives, each checked against its dtype and shape there.
NamedTensors match_listing(NamedTensors loaded, const nlohmann::json& listed,
                           const std::string& file) {
  std::unordered_map<std::string, torch::Tensor> by_name;
  for (auto& [name, t] : loaded) by_name.emplace(name, std::move(t));
  if (!listed.is_array()) throw Error(file + ": the manifest's tensor list is not an array");
  NamedTensors out;
  for (const auto& entry : listed) {
    std::string name, dtype;
    std::vector<int64_t> shape;
    try {
      name = entry.at("name").get<std::string>();
      dtype = entry.at("dtype").get<std::string>();
      shape = entry.at("shape").get<std::vector<int64_t>>();
    } catch (const nlohmann::json::exception& e) {
      throw Error(file + ": malformed tensor entry in the manifest (" + e.what() + ")");
    }
    auto it = by_name.find(name);
    if (it == by_name.end())
      throw Error(file + ": tensor '" + name + "' listed in the manifest is missing");
    const torch::Tensor& t = it->second;
    if (c10::toString(t.scalar_type()) != dtype || t.sizes().vec() != shape)
      throw Error(file + ": tensor '" + name + "' is " + c10::toString(t.scalar_type()) +
                  " of another shape than the manifest's " + dtype);
    out.emplace_back(name, std::move(it->second));
    by_name.erase(it);
  }
  if (!by_name.empty())
    throw Error(file + ": tensor '" + by_name.begin()->first + "' is not in the manifest");
  return out;
}

template <class T>
T field(const nlohmann::json& j, const char* key, const std::string& where) {
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + ": field '" + key + "' is missing or has the wrong type (" + e.what() + ")");
  }
}

nlohmann::json read_json(const fs::path& file) {
  try {
    return nlohmann::json::parse(util::read_file(file));
  } catch (const nlohmann::json::exception& e) {
    throw Error(file.string() + ": not valid JSON (" + e.what() + ")");
  }
}

}  // namespace

std::string_view to_string(SaveStep step) {
  switch (step) {
    case SaveStep::kGlobalWritten: return "global_written";
    case SaveStep::kStrategyWritten: return "strategy_written";
    case SaveStep::kSitesWritten: return "sites_written";
    case SaveStep::kManifestWritten: return "manifest_written";
    case SaveStep::kPreviousMovedAside: return "previous_moved_aside";
    case SaveStep::kSwappedIn: return "swapped_in";
  }
  return "unknown";
}

StateStore::StateStore(fs::path dir) : dir_(std::move(dir)) {}

std::optional<std::int64_t> StateStore::saved_round() const {
  fs::path src = util::complete_directory(checkpoint_dir(), kManifest);
  if (src.empty()) return std::nullopt;
  return field<std::int64_t>(read_json(src / kManifest), "round", (src / kManifest).string());
}

void StateStore::save(const AggregatorState& state) {
  const std::string where = "aggregator state '" + checkpoint_dir().string() + "'";
  if (state.round < 0) throw Error(where + ": round " + std::to_string(state.round) + " < 0");
  if (state.global.empty()) throw Error(where + ": no global weights to save");
  for (const auto& [id, site] : state.sites.sites())
    if (site.last_seen_round > state.round)
      throw Error(where + ": site '" + id + "' was seen in round " +
                  std::to_string(site.last_seen_round) + ", after the state's round " +
                  std::to_string(state.round));
  if (auto previous = saved_round(); previous && state.round < *previous)
    throw Error(where + ": round " + std::to_string(state.round) + " is older than the saved " +
                "round " + std::to_string(*previous) + "; rounds never go back");
  auto step = [&](SaveStep s) {
    if (hook_) hook_(s);
  };

  fs::create_directories(dir_);
  util::write_directory_atomic(
      checkpoint_dir(),
      [&](const fs::path& tmp) {
        reid::save_state_dict(tmp / kGlobalFile, state.global);
        step(SaveStep::kGlobalWritten);
        reid::save_state_dict(tmp / kStrategyFile, state.strategy.tensors);
        step(SaveStep::kStrategyWritten);
        util::write_file_atomic(tmp / kSitesFile, state.sites.to_json().dump(2) + "\n");
        step(SaveStep::kSitesWritten);
        nlohmann::json files = nlohmann::json::object();
        for (const char* name : {kGlobalFile, kStrategyFile, kSitesFile})
          files[name] = {{"bytes", fs::file_size(tmp / name)}, {"sha256", util::sha256_hex_of_file(tmp / name)}};
        int64_t parameters = 0;
        for (const auto& [name, t] : state.global) parameters += t.numel();
        nlohmann::json manifest = {
            {"format", kFormat},
            {"round", state.round},
            {"saved_at", utc_now()},
            {"global", {{"parameters", parameters}, {"tensors", describe(state.global)}}},
            {"strategy",
             {{"name", std::string(to_string(state.strategy.kind))},
              {"meta", state.strategy.meta},
              {"tensors", describe(state.strategy.tensors)}}},
            {"sites", state.sites.size()},
            {"files", files},
            {"info", state.info}};
        util::write_file_atomic(tmp / kManifest, manifest.dump(2) + "\n");
        step(SaveStep::kManifestWritten);
      },
      [&](util::AtomicDirStep s) {
        if (s == util::AtomicDirStep::kPreviousMovedAside) step(SaveStep::kPreviousMovedAside);
        if (s == util::AtomicDirStep::kSwappedIn) step(SaveStep::kSwappedIn);
      });
}

std::optional<AggregatorState> StateStore::load() const {
  const fs::path ckpt = checkpoint_dir();
  const fs::path src = util::complete_directory(ckpt, kManifest);
  if (src.empty()) {
    if (fs::exists(ckpt))
      throw Error("'" + ckpt.string() + "' has no " + kManifest + ", so it is not a complete " +
                  "aggregator checkpoint (modified by hand?); restore it from a backup, or move " +
                  "it away to start the federation afresh");
    return std::nullopt;  // nothing saved yet (at most an interrupted first save)
  }
  if (src != ckpt)
    spdlog::warn("the last checkpoint save was interrupted; loading the previous checkpoint "
                 "from '{}'",
                 src.string());
  const std::string manifest_file = (src / kManifest).string();
  const nlohmann::json manifest = read_json(src / kManifest);
  if (!manifest.is_object() || field<std::string>(manifest, "format", manifest_file) != kFormat)
    throw Error(manifest_file + ": not a " + kFormat + " manifest");

  AggregatorState state;
  state.round = field<std::int64_t>(manifest, "round", manifest_file);
  if (state.round < 0)
    throw Error(manifest_file + ": round " + std::to_string(state.round) + " < 0");

  const nlohmann::json files = field<nlohmann::json>(manifest, "files", manifest_file);
  for (const char* name : {kGlobalFile, kStrategyFile, kSitesFile}) {
    const fs::path file = src / name;
    const std::string where = manifest_file + ": files." + name;
    const nlohmann::json entry = field<nlohmann::json>(files, name, manifest_file + ": files");
    if (!fs::exists(file)) throw Error("'" + file.string() + "' is missing from the checkpoint");
    auto bytes = field<std::uintmax_t>(entry, "bytes", where);
    if (fs::file_size(file) != bytes)
      throw Error("'" + file.string() + "' has " + std::to_string(fs::file_size(file)) +
                  " bytes, the manifest says " + std::to_string(bytes) + " (truncated or replaced)");
    if (util::sha256_hex_of_file(file) != field<std::string>(entry, "sha256", where))
      throw Error("'" + file.string() + "' does not match its SHA-256 in the manifest " +
                  "(corrupted or modified)");
  }

  const nlohmann::json global_info = field<nlohmann::json>(manifest, "global", manifest_file);
  const std::string global_file = (src / kGlobalFile).string();
  state.global = match_listing(reid::load_state_dict(src / kGlobalFile),
                               field<nlohmann::json>(global_info, "tensors", manifest_file),
                               global_file);
  if (state.global.empty()) throw Error(global_file + ": no global weights");
  for (const auto& [name, t] : state.global)
    if (!is_counter(t) && !torch::isfinite(t).all().item<bool>())
      throw Error(global_file + ": tensor '" + name + "' holds NaN or Inf");

  const nlohmann::json strategy = field<nlohmann::json>(manifest, "strategy", manifest_file);
  const auto strategy_name = field<std::string>(strategy, "name", manifest_file);
  try {
    state.strategy.kind = strategy_kind_from_string(strategy_name);
  } catch (const Error& e) {
    throw Error(manifest_file + ": " + e.what());
  }
  state.strategy.meta = field<nlohmann::json>(strategy, "meta", manifest_file);
  if (!state.strategy.meta.is_object())
    throw Error(manifest_file + ": strategy.meta is not an object");
  state.strategy.tensors = match_listing(reid::load_state_dict(src / kStrategyFile),
                                         field<nlohmann::json>(strategy, "tensors", manifest_file),
                                         (src / kStrategyFile).string());

  state.sites = SiteRegistry::from_json(read_json(src / kSitesFile), state.round,
                                        (src / kSitesFile).string());
  if (field<std::size_t>(manifest, "sites", manifest_file) != state.sites.size())
    throw Error(manifest_file + ": lists " + manifest.at("sites").dump() + " sites but " +
                (src / kSitesFile).string() + " has " + std::to_string(state.sites.size()));
  state.info = field<nlohmann::json>(manifest, "info", manifest_file);
  return state;
}

}  // namespace ppreid::agg
