#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "aggregator/secure_aggregation_config.h"
#include "aggregator/strategy.h"
#include "aggregator/update_validator.h"
#include "core/reid/train_config.h"
#include "protocols/message.h"
#include "protocols/transport.h"

namespace ppreid::agg {

// How many of the live sites a round asks: all of them, a fixed count, or a fraction.
struct SiteSampling {
  enum class Mode { kAll, kCount, kFraction } mode = Mode::kAll;
  std::int64_t count = 0;
  double fraction = 1.0;

  // "all", "3" (a count >= 1) or "0.5" (a fraction in (0, 1]); nullopt for anything else.
  static std::optional<SiteSampling> parse(const std::string& text);
  // How many of `live` sites to ask (at least 1 when live > 0, never more than live).
  std::size_t how_many(std::size_t live) const;
  std::string to_string() const;
};

// configs/aggregator.yaml. Relative paths are resolved against the config file's directory.
struct AggregatorConfig {
  std::string source;  // the file it came from, for messages

  std::string federation_id;
  std::string listen = "tcp://127.0.0.1:5555";
  proto::Security security = proto::Security::kCurve;
  std::filesystem::path secret_key;  // curve: the aggregator's PREFIX.key
  std::filesystem::path allow_list;  // curve: directory of SITE_ID.pub files
  std::filesystem::path state_dir;   // checkpoint/, metrics.jsonl, status.json, aggregator.lock

  // The model the federation trains: the `model` section of a training config (the sites must
  // use the same architecture); its optimizer and loader sections give the Task defaults.
  std::filesystem::path model_config;
  reid::TrainConfig model;
  std::uint64_t seed = 1;  // initial weights and site sampling
  int threads = 2;         // aggregation kernels and evaluation

  std::int64_t rounds = 10;  // rounds to complete, then Bye "finished"; 0 = run until stopped
  std::size_t min_sites = 1;
  SiteSampling sites_per_round;
  std::size_t min_updates = 1;
  std::chrono::milliseconds round_timeout{600'000};
  // A site that sent nothing (not even a heartbeat) for this long is considered gone.
  std::chrono::milliseconds site_timeout{30'000};
  int max_attempts = 0;  // attempts per round before giving up with an error; 0 = never give up

  proto::TrainingSettings task;  // what every Task carries (fedprox_mu comes from the strategy)
  StrategyConfig strategy;
  ValidationLimits validation;
  // On: the aggregator sees only the sum of the round's updates; the guard's norm bound turns
  // into client-side clipping (secure_aggregation.clip_norm, or validation.max_delta_norm).
  SecureAggregationConfig secure_aggregation;

  bool evaluate_on_sites = true;  // Evaluate the new global model on the round's sites
  std::chrono::milliseconds eval_timeout{120'000};
  // A held-out dataset (Market layout) the aggregator itself evaluates the global model on.
  std::optional<std::filesystem::path> eval_dataset;

  std::uint64_t max_message_bytes = 512ull << 20;

  proto::ServerOptions server_options() const;
};

AggregatorConfig load_aggregator_config(const std::filesystem::path& file);
AggregatorConfig parse_aggregator_config(const std::string& yaml, const std::string& file_label,
                                         const std::filesystem::path& base_dir);

}  // namespace ppreid::agg
