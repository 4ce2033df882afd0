#pragma once

// configs/site.yaml: who a site is, where its aggregator is, and how it ingests, de-identifies and
// trains. Relative paths are resolved against the directory of the config file, so a config and
// the files it names can move together.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "core/deid/method_factory.h"
#include "protocols/transport.h"

namespace ppreid::client {

// Generate the raw dataset with `ppreid synth` settings when it is missing (demos, tests).
struct SiteSynth {
  std::filesystem::path profile;  // a profile YAML (configs/tiny.yaml) giving the synth section
  std::uint64_t seed = 1;         // overrides the profile's, so every site gets other people
  std::optional<int> ids;         // overrides of the profile's synth section
  std::optional<int> images_per_id;
};

struct SiteConfig {
  std::filesystem::path file;  // the config itself, for messages

  std::string site_id;
  std::string federation_id;

  // aggregator:
  std::string endpoint;  // tcp://HOST:PORT
  proto::Security security = proto::Security::kCurve;
  std::filesystem::path secret_key_file;         // curve: this site's PREFIX.key
  std::filesystem::path server_public_key_file;  // curve: the aggregator's .pub, pinned

  // data:
  std::filesystem::path raw;    // Market-1501 layout; never leaves the site
  std::optional<SiteSynth> synth;
  std::filesystem::path store;  // the de-identified copy the site trains on
  std::filesystem::path state;  // the site's own head and centres between rounds

  // deid: (parameters named like `ppreid deid`'s flags)
  deid::MethodSpec deid;
  int deid_threads = 0;  // 0 = all cores
  // deid.reproducible_for_experiments: the operator's confirmation that a seeded (not private)
  // de-identification is wanted; deid.seed and `ppreid site --seed` are refused without it.
  bool deid_reproducible = false;

  // training:
  std::filesystem::path train_config;  // configs/train/*.yaml: model, loss, transform, threads
  int threads = 0;                     // 0: the train config's runtime.threads
  bool evaluate = true;                // answer Evaluate with the local query/gallery

  // runtime:
  std::chrono::milliseconds heartbeat_interval{2000};
  std::chrono::milliseconds reconnect_initial{500};
  std::chrono::milliseconds reconnect_max{10'000};
  std::chrono::milliseconds connect_give_up{0};  // 0: keep trying for ever
  std::chrono::milliseconds handshake_timeout{10'000};
};

// Reads and validates the file; every error names the file, the dotted key and the line.
SiteConfig load_site_config(const std::filesystem::path& file);
SiteConfig parse_site_config(const std::string& yaml, const std::filesystem::path& file);

}  // namespace ppreid::client
