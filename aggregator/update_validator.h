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
  kTooManyRefusals,    // "too_many_refusals": the site's updates were refused max_refusals times
  kNegativeVariance,   // "negative_variance": a BatchNorm running_var below 0 (would turn NaN)
};
std::string_view to_string(RejectReason reason);
// The reasons in declaration order (for metrics with a zero count per reason).
const std::vector<RejectReason>& all_reject_reasons();

struct Rejection {
  std::string site;
  RejectReason reason;
  std::string detail;  // human-readable: the tensor, the norm, the rounds involved
};

// How the norm of an update's change ||update - global||_2 (of a delta update: of the delta,
// over all floating-point tensors: parameters and BatchNorm statistics) is bounded; see
// update_guard.h for the why.
enum class NormBound {
  kRelative,  // "relative": norm_multiple x the lower median of the round's norms (default)
  kAbsolute,  // "absolute": max_delta_norm
  kOff,       // "off"
};
enum class OverBound {
  kClip,    // "clip": the change is scaled down to the bound (default)
  kRefuse,  // "refuse": the update is refused (norm_too_large)
};
std::string_view to_string(NormBound bound);   // relative | absolute | off
std::string_view to_string(OverBound action);  // clip | refuse

struct ValidationLimits {
  NormBound norm_bound = NormBound::kRelative;
  double norm_multiple = 3.0;
  std::optional<double> max_delta_norm;  // the absolute bound
  OverBound over_bound = OverBound::kClip;
  // No site's sample count above this share of the round's total (1: no cap).
  double max_sample_share = 0.5;
  // A site whose update was refused may send another until the round closes; the round waits
  // for it at most this long after the refusal (0: the refusal counts as its answer), and
  // stops listening to it after max_refusals refusals in one round.
  double resend_grace_seconds = 10.0;
  int max_refusals = 3;
  // Largest believable sample count (a site's training images); larger counts are refused, as
  // they would let one site dominate FedAvg.
  std::int64_t max_samples = 100'000'000;

  // The section as YAML lines (indented by `indent`), which read() parses back to these limits.
  std::string to_yaml(const std::string& indent) const;
  // Reads a config section such as
  //   validation: {norm_bound: relative, norm_multiple: 3, over_bound: clip,
  //                max_samples: 1000000, max_sample_share: 0.5, resend_grace: 10}
  // (max_delta_norm without norm_bound implies norm_bound: absolute; absolute needs it).
  static ValidationLimits read(util::ConfigReader& section);
  // Keys absent from the section keep the values of `defaults`.
  static ValidationLimits read(util::ConfigReader& section, ValidationLimits defaults);
  // The validator refuses over-bound updates itself (absolute bound, over_bound refuse): the
  // site hears it at once and may resend. Otherwise the UpdateGuard bounds them.
  bool validator_refuses_norm() const {
    return norm_bound == NormBound::kAbsolute && over_bound == OverBound::kRefuse;
  }
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
  // strategies expect), sets its delta_norm, counts its site for this round and returns nullopt. A rejected update
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
  std::optional<Rejection> check_data(const ModelUpdate& update, double norm) const;
  const at::Tensor& global_of(const std::string& name) const;

  ValidationLimits limits_;
  std::int64_t round_ = -1;
  NamedTensors global_;
  std::unordered_map<std::string, std::size_t> index_;
  std::set<std::string> expected_;
  std::set<std::string> counted_;
};

}  // namespace ppreid::agg
