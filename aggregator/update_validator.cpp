#include "aggregator/update_validator.h"

#include <cmath>
#include <limits>
#include <sstream>

#include "aggregator/tensor_kernels.h"
#include "core/util/config.h"
#include "core/util/error.h"

namespace ppreid::agg {
namespace {

Rejection reject(const ModelUpdate& u, RejectReason reason, std::string detail) {
  return Rejection{u.site, reason, std::move(detail)};
}

std::string number(double v) {
  std::ostringstream out;
  out.precision(6);
  out << v;
  return out.str();
}

}  // namespace

std::string_view to_string(RejectReason reason) {
  switch (reason) {
    case RejectReason::kStaleRound: return "stale_round";
    case RejectReason::kFutureRound: return "future_round";
    case RejectReason::kUnexpectedSite: return "unexpected_site";
    case RejectReason::kDuplicateSite: return "duplicate_site";
    case RejectReason::kBadSampleCount: return "bad_sample_count";
    case RejectReason::kStructureMismatch: return "structure_mismatch";
    case RejectReason::kNonFinite: return "non_finite";
    case RejectReason::kNormTooLarge: return "norm_too_large";
    case RejectReason::kTooManyRefusals: return "too_many_refusals";
    case RejectReason::kNegativeVariance: return "negative_variance";
  }
  return "unknown";
}

std::string_view to_string(NormBound bound) {
  switch (bound) {
    case NormBound::kRelative: return "relative";
    case NormBound::kAbsolute: return "absolute";
    case NormBound::kOff: return "off";
  }
  return "unknown";
}

std::string_view to_string(OverBound action) {
  return action == OverBound::kClip ? "clip" : "refuse";
}

const std::vector<RejectReason>& all_reject_reasons() {
  static const std::vector<RejectReason> reasons = {
      RejectReason::kStaleRound,     RejectReason::kFutureRound,
      RejectReason::kUnexpectedSite, RejectReason::kDuplicateSite,
      RejectReason::kBadSampleCount, RejectReason::kStructureMismatch,
      RejectReason::kNonFinite,      RejectReason::kNormTooLarge,
      RejectReason::kTooManyRefusals, RejectReason::kNegativeVariance};
  return reasons;
}

ValidationLimits ValidationLimits::read(util::ConfigReader& section) {
  return read(section, ValidationLimits{});
}

ValidationLimits ValidationLimits::read(util::ConfigReader& section, ValidationLimits defaults) {
  ValidationLimits limits = defaults;
  if (section.has("max_delta_norm")) {
    double bound = 0;
    section.get("max_delta_norm", bound, 1e-12, 1e300);
    limits.max_delta_norm = bound;
    limits.norm_bound = NormBound::kAbsolute;
  }
  std::string mode(to_string(limits.norm_bound));
  section.get_choice("norm_bound", mode, {"relative", "absolute", "off"});
  limits.norm_bound = mode == "relative"   ? NormBound::kRelative
                      : mode == "absolute" ? NormBound::kAbsolute
                                           : NormBound::kOff;
  if (limits.norm_bound == NormBound::kAbsolute && !limits.max_delta_norm)
    section.fail("norm_bound", "is absolute but max_delta_norm is not set; give the bound, or use "
                               "norm_bound: relative");
  if (limits.norm_bound != NormBound::kAbsolute && limits.max_delta_norm)
    section.fail("max_delta_norm", "applies to norm_bound: absolute, not " + mode);
  if (limits.norm_bound == NormBound::kRelative) {
    section.get("norm_multiple", limits.norm_multiple, 1.0, 1e6);
  } else if (section.has("norm_multiple")) {
    section.fail("norm_multiple", "applies to norm_bound: relative, not " + mode);
  }
  std::string action(to_string(limits.over_bound));
  section.get_choice("over_bound", action, {"clip", "refuse"});
  limits.over_bound = action == "clip" ? OverBound::kClip : OverBound::kRefuse;
  section.get("max_samples", limits.max_samples, std::int64_t{1},
              std::numeric_limits<std::int64_t>::max());
  section.get("max_sample_share", limits.max_sample_share, 1e-6, 1.0);
  section.get("resend_grace", limits.resend_grace_seconds, 0.0, 86400.0);
  section.get("max_refusals", limits.max_refusals, 1, 1000);
  section.finish();
  return limits;
}

std::string ValidationLimits::to_yaml(const std::string& indent) const {
  std::ostringstream y;
  y.precision(17);
  y << indent << "norm_bound: " << to_string(norm_bound) << "\n";
  if (norm_bound == NormBound::kRelative) y << indent << "norm_multiple: " << norm_multiple << "\n";
  if (norm_bound == NormBound::kAbsolute) y << indent << "max_delta_norm: " << *max_delta_norm << "\n";
  y << indent << "over_bound: " << to_string(over_bound) << "\n"
    << indent << "max_samples: " << max_samples << "\n"
    << indent << "max_sample_share: " << max_sample_share << "\n"
    << indent << "resend_grace: " << resend_grace_seconds << "\n"
    << indent << "max_refusals: " << max_refusals << "\n";
  return y.str();
}

UpdateValidator::UpdateValidator(ValidationLimits limits) : limits_(limits) {
  if (limits_.norm_bound == NormBound::kAbsolute && !limits_.max_delta_norm)
    throw Error("update validation: norm_bound absolute needs max_delta_norm");
  if (!(limits_.norm_multiple >= 1.0))
    throw Error("update validation: norm_multiple must be >= 1, got " +
                number(limits_.norm_multiple));
  if (!(limits_.max_sample_share > 0 && limits_.max_sample_share <= 1))
    throw Error("update validation: max_sample_share must be in (0, 1], got " +
                number(limits_.max_sample_share));
  if (limits_.max_delta_norm && !(*limits_.max_delta_norm > 0))
    throw Error("update validation: the norm bound must be > 0, got " +
                number(*limits_.max_delta_norm));
  if (limits_.max_samples < 1)
    throw Error("update validation: the sample limit must be >= 1, got " +
                std::to_string(limits_.max_samples));
}

void UpdateValidator::begin_round(std::int64_t round, const NamedTensors& global,
                                  std::set<std::string> expected_sites) {
  if (round < 0) throw Error("update validation: round " + std::to_string(round) + " < 0");
  if (global.empty()) throw Error("update validation: the global model has no tensors");
  round_ = round;
  global_ = global;
  index_.clear();
  for (std::size_t i = 0; i < global_.size(); ++i) index_.emplace(global_[i].first, i);
  if (index_.size() != global_.size())
    throw Error("update validation: the global model names a tensor twice");
  expected_ = std::move(expected_sites);
  counted_.clear();
}

const torch::Tensor& UpdateValidator::global_of(const std::string& name) const {
  return global_[index_.at(name)].second;
}

std::optional<Rejection> UpdateValidator::check_header(const ModelUpdate& u) const {
  if (round_ < 0) throw Error("update validation: no round in progress (call begin_round)");
  if (u.round < round_)
    return reject(u, RejectReason::kStaleRound,
                  "update for round " + std::to_string(u.round) + ", the round in progress is " +
                      std::to_string(round_));
  if (u.round > round_)
    return reject(u, RejectReason::kFutureRound,
                  "update for round " + std::to_string(u.round) + ", the round in progress is " +
                      std::to_string(round_));
  if (!expected_.empty() && !expected_.count(u.site))
    return reject(u, RejectReason::kUnexpectedSite,
                  "site '" + u.site + "' was not asked in round " + std::to_string(round_));
  if (counted_.count(u.site))
    return reject(u, RejectReason::kDuplicateSite,
                  "site '" + u.site + "' already has an update counted in round " +
                      std::to_string(round_));
  if (u.samples < 1 || u.samples > limits_.max_samples)
    return reject(u, RejectReason::kBadSampleCount,
                  "sample count " + std::to_string(u.samples) + " is outside 1.." +
                      std::to_string(limits_.max_samples));
  std::string difference = structure_difference(global_, u.tensors);
  if (!difference.empty()) return reject(u, RejectReason::kStructureMismatch, difference);
  return std::nullopt;
}

double UpdateValidator::delta_norm(const ModelUpdate& u) const {
  double sum = 0;
  for (const auto& [name, tensor] : u.tensors) {
    if (is_counter(tensor)) continue;
    const torch::Tensor& base = u.kind == UpdateKind::kDelta ? torch::Tensor() : global_of(name);
    sum += kernels::squared_distance(tensor, base);
  }
  return std::sqrt(sum);
}

std::optional<Rejection> UpdateValidator::check_data(const ModelUpdate& u, double norm) const {
  if (!std::isfinite(norm)) {
    // Rare path: find the tensor to name it. A finite update whose squared distance overflows
    // is impossible for float32 data (< 1e77 per element), so this is NaN or Inf in the data.
    for (const auto& [name, tensor] : u.tensors) {
      if (is_counter(tensor)) continue;
      if (!torch::isfinite(tensor).all().item<bool>())
        return reject(u, RejectReason::kNonFinite, "tensor '" + name + "' holds NaN or Inf");
    }
    return reject(u, RejectReason::kNonFinite, "the update's distance to the global is not finite");
  }
  // A negative running variance is never a training result, and its square root would turn
  // every later evaluation NaN (averaging or clipping non-negative variances stays >= 0).
  for (const auto& [name, tensor] : u.tensors) {
    if (!name.ends_with("running_var") || !tensor.is_floating_point()) continue;
    const torch::Tensor value =
        u.kind == UpdateKind::kDelta ? global_of(name).to(tensor.scalar_type()) + tensor : tensor;
    if ((value < 0).any().item<bool>())
      return reject(u, RejectReason::kNegativeVariance,
                    "tensor '" + name + "' holds a negative variance (min " +
                        number(value.min().item<double>()) + ")");
  }
  if (limits_.validator_refuses_norm() && norm > *limits_.max_delta_norm)
    return reject(u, RejectReason::kNormTooLarge,
                  "||update - global||_2 = " + number(norm) + " exceeds the bound " +
                      number(*limits_.max_delta_norm));
  return std::nullopt;
}

std::optional<Rejection> UpdateValidator::check(const ModelUpdate& u) const {
  if (auto r = check_header(u)) return r;
  return check_data(u, delta_norm(u));
}

std::optional<Rejection> UpdateValidator::admit(ModelUpdate& u) {
  if (auto r = check_header(u)) return r;
  const double norm = delta_norm(u);
  if (auto r = check_data(u, norm)) return r;
  u.delta_norm = norm;
  bool ordered = true;
  for (std::size_t i = 0; i < u.tensors.size() && ordered; ++i)
    ordered = u.tensors[i].first == global_[i].first;
  if (!ordered) {
    NamedTensors sorted(global_.size());
    for (auto& entry : u.tensors) sorted[index_.at(entry.first)] = std::move(entry);
    u.tensors = std::move(sorted);
  }
  counted_.insert(u.site);
  return std::nullopt;
}

}  // namespace ppreid::agg
