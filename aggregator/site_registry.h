#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace ppreid::agg {

struct SiteRecord {
  std::string id;
  // Fingerprint of the site's CURVE public key (any stable text form, e.g. hex SHA-256 of the
  // Z85 key); binds the id to the key.
  std::string key_fingerprint;
  std::int64_t last_seen_round = -1;  // last round whose update was accepted; -1: none yet
  std::int64_t samples = 0;           // the sample count of that update
};

// The sites the aggregator knows: id -> key fingerprint, last accepted round, samples. A site id
// is bound to the first key it registered with, and a key to one id, so one site cannot act in
// another's name even across restarts (the registry is part of every checkpoint).
class SiteRegistry {
 public:
  // Registers a new site or confirms a known one. Throws ppreid::Error when the id is known with
  // another key, the key already belongs to another id, or either is empty / not printable.
  const SiteRecord& register_site(const std::string& id, const std::string& key_fingerprint);
  // Records an accepted update; the site must be registered and rounds may not go back.
  void record_update(const std::string& id, std::int64_t round, std::int64_t samples);

  const SiteRecord* find(const std::string& id) const;
  const std::map<std::string, SiteRecord>& sites() const { return sites_; }
  std::size_t size() const { return sites_.size(); }

  nlohmann::json to_json() const;
  // Validates everything (types, unique ids and keys, rounds within [-1, max_round], samples
  // >= 0) and names the entry and field that are wrong.
  static SiteRegistry from_json(const nlohmann::json& j, std::int64_t max_round,
                                const std::string& where);

 private:
  std::map<std::string, SiteRecord> sites_;
  std::map<std::string, std::string> by_key_;  // fingerprint -> id
};

}  // namespace ppreid::agg
