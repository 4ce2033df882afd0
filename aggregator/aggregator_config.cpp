#include "aggregator/aggregator_config.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/util/atomic_file.h"
#include "core/util/config.h"
#include "core/util/error.h"
#include "core/util/paths.h"

namespace ppreid::agg {
namespace fs = std::filesystem;
namespace {


std::chrono::milliseconds seconds_key(util::ConfigReader& r, const std::string& key,
                                      std::chrono::milliseconds fallback, double lo, double hi) {
  double seconds = static_cast<double>(fallback.count()) / 1000.0;
  r.get(key, seconds, lo, hi);
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(seconds * 1000.0)));
}

}  // namespace

std::optional<SiteSampling> SiteSampling::parse(const std::string& text) {
  SiteSampling s;
  if (text == "all") return s;
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  if (text.find_first_of(".eE") == std::string::npos) {
    long long n = std::strtoll(text.c_str(), &end, 10);
    if (*end != '\0' || n < 1) return std::nullopt;
    s.mode = Mode::kCount;
    s.count = n;
    return s;
  }
  double f = std::strtod(text.c_str(), &end);
  if (*end != '\0' || !(f > 0.0) || f > 1.0) return std::nullopt;
  s.mode = Mode::kFraction;
  s.fraction = f;
  return s;
}

std::size_t SiteSampling::how_many(std::size_t live) const {
  if (live == 0) return 0;
  switch (mode) {
    case Mode::kAll:
      return live;
    case Mode::kCount:
      return std::min<std::size_t>(live, static_cast<std::size_t>(count));
    case Mode::kFraction:
      return std::clamp<std::size_t>(
          static_cast<std::size_t>(std::ceil(fraction * static_cast<double>(live) - 1e-9)), 1,
          live);
  }
  return live;
}

std::string SiteSampling::to_string() const {
  switch (mode) {
    case Mode::kAll:
      return "all";
    case Mode::kCount:
      return std::to_string(count);
    case Mode::kFraction: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%g", fraction);
      return buf;
    }
  }
  return "all";
}

proto::ServerOptions AggregatorConfig::server_options() const {
  proto::ServerOptions o;
  o.endpoint = listen;
  o.federation_id = federation_id;
  o.security = security;
  o.secret_key_file = secret_key;
  o.allow_list_dir = allow_list;
  o.socket.codec.max_message_bytes = max_message_bytes;
  // Headers (names, shapes, metrics) are small; a small message limit caps them too.
  o.socket.codec.max_header_bytes = std::min<std::uint64_t>(o.socket.codec.max_header_bytes,
                                                            max_message_bytes);
  return o;
}

AggregatorConfig parse_aggregator_config(const std::string& yaml, const std::string& file_label,
                                         const fs::path& base_dir) {
  auto root = util::ConfigReader::from_string(yaml, file_label);
  AggregatorConfig c;
  c.source = file_label;

  root.require("federation_id", c.federation_id);
  if (c.federation_id.empty()) root.fail("federation_id", "must not be empty");
  root.get("listen", c.listen);
  if (c.listen.rfind("tcp://", 0) != 0)
    root.fail("listen", "must be a tcp:// endpoint such as tcp://0.0.0.0:5555, got '" +
                            c.listen + "'");

  {
    auto sec = root.section("security");
    std::string mode = "curve";
    sec.get_choice("mode", mode, {"curve", "insecure"});
    c.security = mode == "curve" ? proto::Security::kCurve : proto::Security::kInsecure;
    std::string key, allow;
    sec.get("secret_key", key);
    sec.get("allow_list", allow);
    if (c.security == proto::Security::kCurve) {
      if (key.empty())
        sec.fail("secret_key", "is required with mode curve (create one with `ppreid keygen "
                               "--out keys/aggregator`)");
      if (allow.empty())
        sec.fail("allow_list", "is required with mode curve: a directory with one SITE_ID.pub "
                               "per admitted site");
    }
    if (!key.empty()) c.secret_key = util::resolve_config_path(base_dir, key);
    if (!allow.empty()) c.allow_list = util::resolve_config_path(base_dir, allow);
    sec.finish();
  }

  std::string state_dir;
  root.require("state_dir", state_dir);
  c.state_dir = util::resolve_config_path(base_dir, state_dir);

  std::string model;
  root.require("model", model);
  c.model_config = util::resolve_config_path(base_dir, model);
  if (!fs::is_regular_file(c.model_config))
    root.fail("model", "'" + c.model_config.string() +
                           "' is not a file; name a training config such as "
                           "configs/train/tiny.yaml (the sites must use the same model)");
  c.model = reid::load_train_config(c.model_config);
  root.get("seed", c.seed);
  c.threads = c.model.profile.runtime.threads;
  root.get("threads", c.threads, 0, 1024);

  root.get("rounds", c.rounds, std::int64_t{0}, std::int64_t{1} << 40);
  {
    auto sites = root.section("sites");
    std::int64_t min_sites = 1, min_updates = 1;
    sites.get("min_sites", min_sites, std::int64_t{1}, std::int64_t{1} << 20);
    c.min_sites = static_cast<std::size_t>(min_sites);
    std::string per_round = "all";
    sites.get("per_round", per_round);
    auto sampling = SiteSampling::parse(per_round);
    if (!sampling)
      sites.fail("per_round", "must be 'all', a count >= 1 (3) or a fraction in (0, 1] (0.5), "
                              "got '" + per_round + "'");
    c.sites_per_round = *sampling;
    sites.get("min_updates", min_updates, std::int64_t{1}, std::int64_t{1} << 20);
    c.min_updates = static_cast<std::size_t>(min_updates);
    c.round_timeout = seconds_key(sites, "round_timeout", c.round_timeout, 0.1, 7 * 86400.0);
    c.site_timeout = seconds_key(sites, "site_timeout", c.site_timeout, 0.1, 86400.0);
    sites.get("max_attempts", c.max_attempts, 0, 1'000'000);
    if (c.min_updates > c.min_sites)
      sites.fail("min_updates", "is " + std::to_string(c.min_updates) + " but min_sites is " +
                                    std::to_string(c.min_sites) +
                                    ": a round could never reach it; lower min_updates or "
                                    "raise min_sites");
    if (c.sites_per_round.mode == SiteSampling::Mode::kCount &&
        static_cast<std::size_t>(c.sites_per_round.count) < c.min_updates)
      sites.fail("per_round", "asks " + std::to_string(c.sites_per_round.count) +
                                  " sites per round but min_updates is " +
                                  std::to_string(c.min_updates));
    sites.finish();
  }

  {
    // Task defaults come from the model's training config; the task section overrides them.
    c.task.learning_rate = c.model.optimizer.lr;
    c.task.weight_decay = c.model.optimizer.weight_decay;
    c.task.batch_identities = static_cast<std::uint32_t>(c.model.profile.loader.p);
    c.task.batch_instances = static_cast<std::uint32_t>(c.model.profile.loader.k);
    c.task.seed = c.seed;
    auto task = root.section("task");
    task.get("local_epochs", c.task.local_epochs, 1u, 10'000u);
    task.get("learning_rate", c.task.learning_rate, 1e-12, 10.0);
    task.get("weight_decay", c.task.weight_decay, 0.0, 1.0);
    task.get("batch_identities", c.task.batch_identities, 2u, 4096u);
    task.get("batch_instances", c.task.batch_instances, 1u, 4096u);
    task.get("seed", c.task.seed);
    task.finish();
  }

  {
    auto strategy = root.section("strategy");
    c.strategy = StrategyConfig::read(strategy);
  }
  {
    auto validation = root.section("validation");
    c.validation = ValidationLimits::read(validation);
  }
  {
    auto secure = root.section("secure_aggregation");
    c.secure_aggregation = SecureAggregationConfig::read(secure);
    if (c.secure_aggregation.enabled) {
      if (std::string why = SecureAggregationConfig::strategy_problem(c.strategy.kind); !why.empty())
        secure.fail("enabled", why);
      if (c.secure_aggregation.clip_norm == 0 && c.validation.max_delta_norm)
        c.secure_aggregation.clip_norm = *c.validation.max_delta_norm;
    }
  }
  {
    auto eval = root.section("evaluation");
    eval.get("sites", c.evaluate_on_sites);
    c.eval_timeout = seconds_key(eval, "timeout", c.eval_timeout, 0.1, 86400.0);
    std::string dataset;
    eval.get("dataset", dataset);
    if (!dataset.empty()) {
      c.eval_dataset = util::resolve_config_path(base_dir, dataset);
      if (!fs::is_directory(*c.eval_dataset))
        eval.fail("dataset", "'" + c.eval_dataset->string() +
                                 "' is not a directory (a Market-layout dataset with query/ and "
                                 "bounding_box_test/)");
    }
    // The global model's centroid figures on `dataset`; defaults to the model config's
    // eval.centroid_protocol (the simulator sets it from its own config).
    std::string protocol = reid::to_string(c.model.eval.centroid_protocol);
    eval.get_choice("centroid_protocol", protocol,
                    std::vector<std::string>(std::begin(reid::kCentroidProtocolNames),
                                             std::end(reid::kCentroidProtocolNames)));
    c.model.eval.centroid_protocol = reid::parse_centroid_protocol(protocol);
    eval.finish();
  }
  {
    auto transport = root.section("transport");
    std::uint64_t mb = c.max_message_bytes >> 20;
    transport.get("max_message_mb", mb, std::uint64_t{1}, std::uint64_t{1} << 14);
    c.max_message_bytes = mb << 20;
    transport.finish();
  }
  root.finish();
  return c;
}

AggregatorConfig load_aggregator_config(const fs::path& file) {
  if (!fs::is_regular_file(file))
    throw Error("aggregator config '" + file.string() +
                "' does not exist; start from configs/aggregator.yaml");
  return parse_aggregator_config(util::read_file(file), file.string(), file.parent_path());
}

}  // namespace ppreid::agg
