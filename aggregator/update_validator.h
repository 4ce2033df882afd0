#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>

#include "aggregator/model_update.h"

namespace ppreid::util {
class ConfigReader;
}

namespace ppreid::agg {

// Why an update was refused. The strings of to_string() are stable: metrics.jsonl counts
// rejections under them.
enum class RejectReason {
  kStaleRound,         // "stale_round": answers an earlier round (late)
  kFutureRound,        // "future_round": claims a round that has not started
  kUnexpectedSite,     // "unexpected_site": the site was not asked in this round
  kDuplicateSite,      // "duplicate_site": the site already has an update counted this round
  kBadSampleCount,     // "bad_sample_count": 0, negative or above the limit
  kStructureMismatch,  // "structure_mismatch": names, shapes or dtypes differ from the global's
  kNonFinite,          // "non_finite": NaN or Inf in a tensor
  kNormTooLarge,       // "norm_too_large": ||update - global||_2 above the bound
};
std::string_view to_string(RejectReason reason);
// The reasons in declaration order (for metrics with a zero count per reason).
const std::vector<RejectReason>& all_reject_reasons();

struct Rejection {
  std::string site;
  RejectReason reason;
  std::string detail;  // human-readable: the tensor, the norm, the rounds involved
};

struct ValidationLimits {
  // Bound on the L2 norm of the update's difference to the global weights (of a delta update:
  // of the delta), over all floating-point tensors (parameters and BatchNorm statistics).
  std::optional<double> max_delta_norm;
  // Largest believable sample count (a site's training images); larger counts are refused, as
  // they would let one site dominate FedAvg.
  std::int64_t max_samples = 100'000'000;

  // Reads a config section such as `validation: {max_delta_norm: 50, max_samples: 1000000}`
  // (max_delta_norm absent: no bound).
  static ValidationLimits read(util::ConfigReader& section);
};

// Checks updates against the round in progress. Cheap checks run first (round, site, samples,
// names/shapes/dtypes), then one pass over the data computes ||update - global||^2, which also
// detects NaN/Inf. Not thread-safe; one instance per aggregator.
class UpdateValidator {
 public:
  explicit UpdateValidator(ValidationLimits limits = {});

  // Starts round `round` against `global` (the weights sent in its Task, kept by reference
  // count, not copied: do not modify them in place during the round). `expected_sites`: the
  // sites asked in this round; empty accepts any site. Forgets the sites counted so far.
  void begin_round(std::int64_t round, const NamedTensors& global,
                   std::set<std::string> expected_sites = {});

  // Checks `update`; when it passes, puts its tensors in the global model's order (what the
  // strategies expect), counts its site for this round and returns nullopt. A rejected update
  // does not count its site: the same site may still send a valid one.
  std::optional<Rejection> admit(ModelUpdate& update);
  // The same checks, without counting the site or reordering.
  std::optional<Rejection> check(const ModelUpdate& update) const;

  // L2 norm of the update's difference to the global weights (the quantity the bound limits).
  // NaN/Inf when the update holds NaN/Inf. The structure must already match.
  double delta_norm(const ModelUpdate& update) const;

  std::int64_t round() const { return round_; }
  const std::set<std::string>& counted_sites() const { return counted_; }
  const ValidationLimits& limits() const { return limits_; }

 private:
  std::optional<Rejection> check_header(const ModelUpdate& update) const;
  std::optional<Rejection> check_data(const ModelUpdate& update) const;
  const at::Tensor& global_of(const std::string& name) const;

  ValidationLimits limits_;
  std::int64_t round_ = -1;
  NamedTensors global_;
  std::unordered_map<std::string, std::size_t> index_;
  std::set<std::string> expected_;
  std::set<std::string> counted_;
};

}  // namespace ppreid::agg
