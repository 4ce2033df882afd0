#pragma once

#include <cstddef>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "aggregator/model_update.h"

namespace ppreid::util {
class ConfigReader;
}

namespace ppreid::agg {

enum class StrategyKind {
  kFedAvg,
  kFedProx,
  kFedAdam,
  kFedYogi,
  kMedian,
  kTrimmedMean,
  kKrum,
  kMultiKrum,
  kBulyan,
};

// "fedavg", "fedprox", "fedadam", "fedyogi", "median", "trimmed_mean", "krum", "multi_krum",
// "bulyan": the names in configs, checkpoints and metrics.
std::string_view to_string(StrategyKind kind);
// Throws ppreid::Error listing the known names.
StrategyKind strategy_kind_from_string(std::string_view name);

struct StrategyConfig {
  StrategyKind kind = StrategyKind::kFedAvg;
  double mu = 0.01;             // fedprox: weight of the sites' proximal term
  double server_lr = 0.01;      // fedadam/fedyogi: eta
  double beta1 = 0.9;           // fedadam/fedyogi: first-moment decay
  double beta2 = 0.99;          // fedadam/fedyogi: second-moment decay
  double tau = 1e-3;            // fedadam/fedyogi: adaptivity (added to sqrt(v); v starts at tau^2)
  double trim_fraction = 0.1;   // trimmed_mean: share of updates dropped at EACH end per coordinate
  std::int64_t f = 1;           // krum, multi_krum, bulyan: the number of hostile sites assumed
  std::int64_t m = 0;           // multi_krum: updates kept and averaged; 0 = n - f of the round
  bool weighted = true;         // multi_krum: average the kept updates by samples (as Flower)

  // Throws ppreid::Error naming the first field out of range.
  void validate() const;
  // The fewest updates the strategy can aggregate as its guarantees require (krum, multi_krum:
  // n > 2f + 2 and n >= m; bulyan: n >= 4f + 3; the others: 1).
  std::size_t min_updates() const;
  // Empty when `n` updates satisfy min_updates(); else which limit failed, e.g. "krum with
  // f = 2 needs n > 2f + 2 = 6 updates; the round has 5".
  std::string count_problem(std::size_t n) const;
  nlohmann::json to_json() const;
  static StrategyConfig from_json(const nlohmann::json& j, const std::string& where);
  // Reads a config section such as
  //   strategy: {name: fedadam, server_lr: 0.01, beta1: 0.9, beta2: 0.99, tau: 0.001}
  // (keys that do not apply to the named strategy are refused, so typos do not pass silently).
  static StrategyConfig read(util::ConfigReader& section);
};

// What a strategy must carry from one round to the next (FedAdam/FedYogi: the moments m and v
// and the step count); part of every checkpoint.
struct StrategyState {
  StrategyKind kind = StrategyKind::kFedAvg;
  nlohmann::json meta = nlohmann::json::object();  // scalars, e.g. {"step": 3}
  NamedTensors tensors;                            // e.g. "m/backbone.conv1.weight"
};

// One aggregation rule. A round is begin_round(global), add(update) for every update the
// UpdateValidator admitted (same tensor names, order, shapes and dtypes as `global`), then
// finish() (the new global weights) or abandon(). Not thread-safe: call from one thread.
//
// Memory during a round, in model sizes (one model = its float32 bytes, ~94 MB for ResNet-50):
//   fedavg, fedprox, fedadam, fedyogi: streaming; a float64 running sum (2) and at most one
//     update waiting to be folded with the next (1), whatever the number of updates, plus for
//     fedadam/fedyogi their moments m and v (2) kept between rounds.
//   median, trimmed_mean: need all updates at once: every update is kept (N), plus one output.
//   krum, multi_krum, bulyan: every update is kept (N), plus N x N float64 distances, plus for
//     bulyan the selected delta updates turned into weights.
class Strategy {
 public:
  explicit Strategy(StrategyConfig config) : config_(config) {}
  virtual ~Strategy() = default;
  Strategy(const Strategy&) = delete;
  Strategy& operator=(const Strategy&) = delete;

  StrategyKind kind() const { return config_.kind; }
  const StrategyConfig& config() const { return config_; }

  // Starts a round from the global weights sent in its Task (abandoning a round in progress).
  // They are kept by reference count, not copied: do not modify them in place until finish()
  // or abandon().
  void begin_round(const NamedTensors& global);
  // Folds in one admitted update. Strategies may keep references to its tensors until the next
  // add() (streaming ones) or finish() (median, trimmed mean): do not modify them in place.
  // Throws ppreid::Error when called outside a round, with a mismatched structure (see
  // require_aligned) or without samples.
  void add(const ModelUpdate& update);
  std::size_t num_updates() const { return count_; }
  // The new global weights (fresh tensors, the global's dtypes); ends the round and, for server
  // optimizers, advances their state: checkpoint the result and state() together. Throws
  // ppreid::Error when no update was added or fewer than config().min_updates() (the round must
  // be retried).
  NamedTensors finish();
  // Ends the round without changing anything.
  void abandon();
  bool in_round() const { return in_round_; }
  // Bytes the round in progress holds (running sums, kept updates, optimizer moments).
  virtual std::size_t held_bytes() const = 0;

  // Settings to put into every Task of this strategy, e.g. {"proximal_mu": 0.01} for FedProx;
  // an empty object for the others.
  virtual nlohmann::json task_settings() const { return nlohmann::json::object(); }
  // What the last finish() decided, for the round's metrics record (e.g. the updates Krum
  // selected); an empty object for strategies that decide nothing per update.
  virtual nlohmann::json round_report() const { return nlohmann::json::object(); }
  // The state to checkpoint after finish(); kind only, for stateless strategies.
  virtual StrategyState state() const;
  // Restores a checkpointed state() for the model `global`; throws ppreid::Error saying what
  // does not match (another strategy, missing or mis-shaped moments).
  virtual void restore(const StrategyState& state, const NamedTensors& global);

 protected:
  // The steps of a round, called by the public functions above once they have checked the
  // call: on_begin after global() is set; on_add with an aligned update with samples >= 1;
  // on_finish with at least one update (the round is then cleared); on_clear to drop the
  // round's data (after finish and on abandon).
  virtual void on_begin() {}
  virtual void on_add(const ModelUpdate& update) = 0;
  virtual NamedTensors on_finish() = 0;
  virtual void on_clear() = 0;

  const NamedTensors& global() const { return global_; }
  // Throws ppreid::Error when `state` was written by another strategy.
  void require_kind(const StrategyState& state) const;

  StrategyConfig config_;

 private:
  void require_round(const char* what) const;

  bool in_round_ = false;
  NamedTensors global_;
  std::size_t count_ = 0;
};

// The strategy `config.kind` names (config.validate() first).
std::unique_ptr<Strategy> make_strategy(const StrategyConfig& config);

}  // namespace ppreid::agg
