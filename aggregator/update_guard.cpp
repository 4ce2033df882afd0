#include "aggregator/update_guard.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>

#include "core/util/error.h"

namespace ppreid::agg {
namespace {

std::string short_number(double v) {
  std::ostringstream out;
  out.precision(6);
  out << v;
  return out.str();
}

}  // namespace

double relative_norm_bound(std::vector<double> norms, double multiple) {
  if (norms.empty()) throw Error("relative norm bound of no updates");
  const auto lower_median = norms.begin() + static_cast<std::ptrdiff_t>((norms.size() - 1) / 2);
  std::nth_element(norms.begin(), lower_median, norms.end());
  return multiple * *lower_median;
}

std::vector<std::int64_t> cap_by_share(const std::vector<std::int64_t>& counts, double share) {
  const std::size_t n = counts.size();
  if (n == 0 || share >= 1.0) return counts;
  if (share * static_cast<double>(n) < 1.0) {
    const std::int64_t least = *std::min_element(counts.begin(), counts.end());
    return std::vector<std::int64_t>(n, least);
  }
  // Descending; with the k largest lowered to c, c = share (k c + rest) gives
  // c = share rest / (1 - share k), valid when it lies between the k-th and (k+1)-th largest.
  std::vector<std::int64_t> sorted = counts;
  std::sort(sorted.begin(), sorted.end(), std::greater<>());
  double rest = std::accumulate(sorted.begin(), sorted.end(), 0.0);
  double level = static_cast<double>(sorted[0]);
  for (std::size_t k = 0; k < n; ++k) {
    const double c = share * rest / (1.0 - share * static_cast<double>(k));
    if (c >= static_cast<double>(sorted[k])) {
      level = k == 0 ? static_cast<double>(sorted[0]) : c;
      break;
    }
    rest -= static_cast<double>(sorted[k]);
  }
  const auto cap = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::floor(level)));
  std::vector<std::int64_t> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = std::min(counts[i], cap);
  return out;
}

void scale_change(ModelUpdate& update, const NamedTensors& global, double factor) {
  require_aligned(global, update, "norm clipping");
  for (std::size_t i = 0; i < global.size(); ++i) {
    torch::Tensor& t = update.tensors[i].second;
    if (!t.is_floating_point()) continue;
    if (update.kind == UpdateKind::kDelta) {
      t = t * factor;
    } else {
      const torch::Tensor& g = global[i].second;
      t = (g.to(torch::kFloat64) + (t.to(torch::kFloat64) - g.to(torch::kFloat64)) * factor)
              .to(t.scalar_type());
    }
  }
  if (std::isfinite(update.delta_norm)) update.delta_norm *= factor;
}

UpdateGuard::UpdateGuard(ValidationLimits limits) : limits_(limits) {}

void UpdateGuard::begin_round(const NamedTensors& global) {
  global_ = global;
  held_.clear();
  actions_.clear();
  late_refusals_.clear();
  refused_.reset();
  bound_.reset();
  if (limits_.norm_bound == NormBound::kAbsolute) bound_ = limits_.max_delta_norm;
}

bool UpdateGuard::holds() const {
  return limits_.norm_bound == NormBound::kRelative || limits_.max_sample_share < 1.0;
}

std::optional<ModelUpdate> UpdateGuard::clip_or_refuse(ModelUpdate update, double bound,
                                                       GuardAction& action) {
  if (!(update.delta_norm > bound)) return update;
  if (limits_.over_bound == OverBound::kRefuse) {
    refused_ = Rejection{update.site, RejectReason::kNormTooLarge,
                         "||update - global||_2 = " + short_number(update.delta_norm) +
                             " exceeds the bound " + short_number(bound)};
    return std::nullopt;
  }
  action.clipped_from = update.delta_norm;
  scale_change(update, global_, bound / update.delta_norm);
  return update;
}

std::optional<ModelUpdate> UpdateGuard::admit(ModelUpdate update,
                                              std::optional<std::int64_t> declared) {
  refused_.reset();
  GuardAction action;
  action.site = update.site;
  action.claimed = update.samples;
  if (declared && *declared >= 1 && update.samples > *declared) {
    update.samples = *declared;
    action.capped_by = "hello";
  }
  action.counted = update.samples;
  actions_.push_back(action);
  if (holds()) {
    held_.push_back(std::move(update));
    return std::nullopt;
  }
  if (limits_.norm_bound != NormBound::kAbsolute) return update;
  std::optional<ModelUpdate> out = clip_or_refuse(std::move(update), *bound_, actions_.back());
  if (!out) actions_.pop_back();
  return out;
}

std::vector<ModelUpdate> UpdateGuard::close() {
  std::vector<ModelUpdate> out;
  if (held_.empty()) return out;
  if (limits_.norm_bound == NormBound::kRelative) {
    std::vector<double> norms;
    for (const auto& u : held_) norms.push_back(u.delta_norm);
    bound_ = relative_norm_bound(norms, limits_.norm_multiple);
  }
  // actions_ has one entry per held update, in the same order (admit pushes both).
  std::vector<GuardAction> kept;
  for (std::size_t i = 0; i < held_.size(); ++i) {
    std::optional<ModelUpdate> u =
        bound_ ? clip_or_refuse(std::move(held_[i]), *bound_, actions_[i]) : std::move(held_[i]);
    if (!u) {
      late_refusals_.push_back(*refused_);
      refused_.reset();
      continue;
    }
    kept.push_back(actions_[i]);
    out.push_back(std::move(*u));
  }
  actions_ = std::move(kept);
  held_.clear();
  std::vector<std::int64_t> counts;
  for (const auto& u : out) counts.push_back(u.samples);
  const std::vector<std::int64_t> capped = cap_by_share(counts, limits_.max_sample_share);
  for (std::size_t i = 0; i < out.size(); ++i) {
    GuardAction& action = actions_[i];
    if (capped[i] < out[i].samples) {
      out[i].samples = capped[i];
      action.capped_by = action.capped_by.empty() ? "share" : action.capped_by + "+share";
    }
    action.counted = out[i].samples;
  }
  return out;
}

nlohmann::json UpdateGuard::record() const {
  nlohmann::json clipped = nlohmann::json::object(), capped = nlohmann::json::object();
  for (const auto& a : actions_) {
    if (a.clipped_from) clipped[a.site] = *a.clipped_from;
    if (!a.capped_by.empty())
      capped[a.site] = {{"claimed", a.claimed}, {"counted", a.counted}, {"by", a.capped_by}};
  }
  nlohmann::json j = {{"norm_bound", std::string(to_string(limits_.norm_bound))},
                      {"clipped", clipped},
                      {"capped", capped}};
  if (bound_) j["bound"] = *bound_;
  return j;
}

}  // namespace ppreid::agg
