#include "client/site_config.h"

#include <cmath>
#include <type_traits>

#include "core/deid/method_config.h"
#include "core/profile/profile.h"
#include "core/util/atomic_file.h"
#include "core/util/config.h"
#include "core/util/error.h"
#include "core/util/paths.h"
#include "protocols/text.h"

namespace ppreid::client {
namespace fs = std::filesystem;
namespace {


std::chrono::milliseconds read_seconds(util::ConfigReader& r, const std::string& key,
                                       std::chrono::milliseconds current, double min_seconds) {
  double seconds = std::chrono::duration<double>(current).count();
  r.get(key, seconds, min_seconds, 86400.0 * 365);
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(seconds * 1000.0)));
}

// deid: method and the parameters of `ppreid deid`, spelled as its flags without the dashes.
void read_deid(util::ConfigReader r, SiteConfig& c) {
  deid::MethodSpec& s = c.deid;
  s = deid::read_method_spec(r, c.file.parent_path());
  r.get("threads", c.deid_threads, 0, 256);
  r.get("reproducible_for_experiments", c.deid_reproducible);
  if (s.seed && !c.deid_reproducible)
    r.fail("seed", "makes the de-identification reproducible by anyone who knows the seed, so the "
                   "store is not private; it is for experiments only: add "
                   "deid.reproducible_for_experiments: true to confirm, or remove deid.seed to "
                   "draw the noise from the CSPRNG");
  r.finish();
  // Build the method once now, so a wrong combination is reported at startup, with the file.
  try {
    deid::make_deidentifier(s, deid::ParameterNaming{"deid.", "-"});
  } catch (const Error& e) {
    throw Error(c.file.string() + ":" + std::to_string(r.line_of("method")) + ": " + e.what());
  }
}

}  // namespace

SiteConfig parse_site_config(const std::string& yaml, const fs::path& file) {
  util::ConfigReader root = util::ConfigReader::from_string(yaml, file.string());
  SiteConfig c;
  c.file = file;
  const fs::path base = file.parent_path();
  auto path_key = [&](util::ConfigReader& r, const char* key, fs::path& out, bool required) {
    std::string v;
    if (required) r.require(key, v);
    else r.get(key, v);
    if (v.empty() && required) r.fail(key, "must not be empty");
    if (!v.empty()) out = util::resolve_config_path(base, v);
  };

  root.require("site_id", c.site_id);
  if (!proto::is_valid_id(c.site_id))
    root.fail("site_id", "'" + proto::printable_for_log(c.site_id) +
                             "' is not 1-128 characters of A-Z a-z 0-9 . _ - (it is the stem of "
                             "the site's .pub file in the aggregator's allow-list)");
  root.require("federation_id", c.federation_id);
  if (!proto::is_valid_id(c.federation_id))
    root.fail("federation_id", "must be 1-128 characters of A-Z a-z 0-9 . _ -");

  {
    util::ConfigReader a = root.section("aggregator");
    a.require("endpoint", c.endpoint);
    if (c.endpoint.rfind("tcp://", 0) != 0 && c.endpoint.rfind("ipc://", 0) != 0)
      a.fail("endpoint", "'" + c.endpoint + "' is not a tcp://HOST:PORT (or ipc://) address");
    std::string security = "curve";
    a.get_choice("security", security, {"curve", "insecure"});
    c.security = security == "curve" ? proto::Security::kCurve : proto::Security::kInsecure;
    path_key(a, "public_key", c.server_public_key_file, false);
    if (c.security == proto::Security::kCurve && c.server_public_key_file.empty())
      a.fail("public_key", "is required with security: curve (the aggregator's .pub file, "
                           "pinned by the site)");
    c.handshake_timeout = read_seconds(a, "handshake_timeout", c.handshake_timeout, 0.1);
    a.finish();
  }
  path_key(root, "secret_key", c.secret_key_file, false);
  if (c.security == proto::Security::kCurve && c.secret_key_file.empty())
    root.fail("secret_key", "is required with aggregator.security: curve (this site's PREFIX.key "
                            "of `ppreid keygen`)");

  {
    util::ConfigReader d = root.section("data");
    path_key(d, "raw", c.raw, true);
    path_key(d, "store", c.store, true);
    path_key(d, "state", c.state, true);
    if (d.has("synth")) {
      util::ConfigReader s = d.section("synth");
      SiteSynth synth;
      std::string profile;
      s.require("profile", profile);
      // A bare profile name (tiny) is looked up like `ppreid synth --config tiny`.
      fs::path near = util::resolve_config_path(base, profile);
      synth.profile = fs::exists(near) ? near : find_profile(profile);
      s.get("seed", synth.seed);
      if (s.has("ids")) {
        int ids = 0;
        s.get("ids", ids, 4, 100000);
        synth.ids = ids;
      }
      if (s.has("images_per_id")) {
        int n = 0;
        s.get("images_per_id", n, 4, 10000);
        synth.images_per_id = n;
      }
      s.finish();
      c.synth = synth;
    }
    d.finish();
  }
  read_deid(root.section("deid"), c);

  {
    util::ConfigReader t = root.section("training");
    path_key(t, "config", c.train_config, true);
    t.get("threads", c.threads, 0, 256);
    t.get("evaluate", c.evaluate);
    t.finish();
  }
  {
    util::ConfigReader r = root.section("runtime");
    c.heartbeat_interval = read_seconds(r, "heartbeat_interval", c.heartbeat_interval, 0.05);
    c.reconnect_initial = read_seconds(r, "reconnect_initial", c.reconnect_initial, 0.01);
    c.reconnect_max = read_seconds(r, "reconnect_max", c.reconnect_max, 0.01);
    c.connect_give_up = read_seconds(r, "connect_give_up", c.connect_give_up, 0.0);
    if (c.reconnect_max < c.reconnect_initial)
      r.fail("reconnect_max", "must be at least runtime.reconnect_initial");
    r.finish();
  }
  root.finish();
  return c;
}

SiteConfig load_site_config(const fs::path& file) {
  if (!fs::exists(file))
    throw Error("site config '" + file.string() +
                "' does not exist; copy configs/site.yaml and edit it");
  std::string yaml;
  try {
    yaml = util::read_file(file);
  } catch (const std::exception& e) {
    throw Error("cannot read site config '" + file.string() + "': " + e.what());
  }
  return parse_site_config(yaml, fs::absolute(file));
}

}  // namespace ppreid::client
