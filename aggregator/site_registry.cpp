#include "aggregator/site_registry.h"

#include <algorithm>

#include "core/util/error.h"

namespace ppreid::agg {
namespace {

constexpr std::size_t kMaxTextLength = 256;

// Ids and fingerprints go into logs, metrics and file names: printable ASCII, no spaces.
std::string text_problem(const std::string& s) {
  if (s.empty()) return "is empty";
  if (s.size() > kMaxTextLength) return "is longer than " + std::to_string(kMaxTextLength);
  bool printable = std::all_of(s.begin(), s.end(), [](char c) { return c > ' ' && c < 127; });
  return printable ? "" : "has characters other than printable ASCII without spaces";
}

}  // namespace

const SiteRecord& SiteRegistry::register_site(const std::string& id,
                                              const std::string& key_fingerprint) {
  if (auto p = text_problem(id); !p.empty()) throw Error("site id '" + id + "' " + p);
  if (auto p = text_problem(key_fingerprint); !p.empty())
    throw Error("key fingerprint of site '" + id + "' " + p);
  auto known = sites_.find(id);
  if (known != sites_.end()) {
    if (known->second.key_fingerprint != key_fingerprint)
      throw Error("site '" + id + "' registered with key " + known->second.key_fingerprint +
                  " but now presents key " + key_fingerprint +
                  "; a site id is bound to its key (a replaced key needs a new site id)");
    return known->second;
  }
  auto owner = by_key_.find(key_fingerprint);
  if (owner != by_key_.end())
    throw Error("key " + key_fingerprint + " already belongs to site '" + owner->second +
                "' and cannot register as '" + id + "'");
  by_key_.emplace(key_fingerprint, id);
  return sites_.emplace(id, SiteRecord{id, key_fingerprint, -1, 0}).first->second;
}

void SiteRegistry::record_update(const std::string& id, std::int64_t round, std::int64_t samples) {
  auto it = sites_.find(id);
  if (it == sites_.end()) throw Error("site '" + id + "' sent an update but is not registered");
  if (round < it->second.last_seen_round)
    throw Error("site '" + id + "': update for round " + std::to_string(round) +
                " after one for round " + std::to_string(it->second.last_seen_round));
  if (samples < 0) throw Error("site '" + id + "': negative sample count");
  it->second.last_seen_round = round;
  it->second.samples = samples;
}

const SiteRecord* SiteRegistry::find(const std::string& id) const {
  auto it = sites_.find(id);
  return it == sites_.end() ? nullptr : &it->second;
}

nlohmann::json SiteRegistry::to_json() const {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& [id, s] : sites_)
    list.push_back({{"id", s.id},
                    {"key_fingerprint", s.key_fingerprint},
                    {"last_seen_round", s.last_seen_round},
                    {"samples", s.samples}});
  return list;
}

SiteRegistry SiteRegistry::from_json(const nlohmann::json& j, std::int64_t max_round,
                                     const std::string& where) {
  if (!j.is_array()) throw Error(where + ": the site registry must be a JSON array");
  SiteRegistry registry;
  for (std::size_t n = 0; n < j.size(); ++n) {
    const std::string entry = where + ": site entry " + std::to_string(n);
    const auto& e = j[n];
    auto field = [&](const char* key, auto check) {
      if (!e.is_object() || !e.contains(key) || !check(e.at(key)))
        throw Error(entry + ": field '" + key + "' is missing or has the wrong type");
      return e.at(key);
    };
    auto is_string = [](const nlohmann::json& v) { return v.is_string(); };
    auto is_integer = [](const nlohmann::json& v) { return v.is_number_integer(); };
    std::string id = field("id", is_string).get<std::string>();
    std::string key = field("key_fingerprint", is_string).get<std::string>();
    auto round = field("last_seen_round", is_integer).get<std::int64_t>();
    auto samples = field("samples", is_integer).get<std::int64_t>();
    if (round < -1 || round > max_round)
      throw Error(entry + " ('" + id + "'): last_seen_round " + std::to_string(round) +
                  " is outside -1.." + std::to_string(max_round) + " (the state's round)");
    if (samples < 0) throw Error(entry + " ('" + id + "'): negative samples");
    if (registry.find(id)) throw Error(entry + ": site '" + id + "' is listed twice");
    try {
      registry.register_site(id, key);
    } catch (const Error& err) {
      throw Error(entry + ": " + err.what());
    }
    registry.sites_.at(id).last_seen_round = round;
    registry.sites_.at(id).samples = samples;
  }
  return registry;
}

}  // namespace ppreid::agg
