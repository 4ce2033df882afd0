#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "aggregator/model_update.h"
#include "aggregator/update_validator.h"

namespace ppreid::agg {

// The defences every strategy gets, on by default (what the UpdateValidator's refusals cannot
// do alone: an update may be well-formed, finite and still steer the model):
//
//  * Norm bound. `relative` (default): the bound of a round is norm_multiple (3) times the lower
//    median of the round's admitted update norms ||update - global||_2, so an operator does not
//    have to guess a number that depends on the model, learning rate and data; `absolute`: the
//    fixed max_delta_norm; `off`. An update above the bound is clipped to it (over_bound: clip,
//    default: global + (bound / norm) (update - global)) or refused (over_bound: refuse).
//    Clipping is the default because an honest site whose change is merely larger (more data,
//    more local steps) keeps its contribution, while a boosted update can move the model at
//    most as far as a few honest ones (Sun et al. 2019, "Can you really backdoor federated
//    learning?"). With one update the bound is its own norm times the multiple: nothing to
//    compare with, nothing clipped. The lower median of two updates is the smaller one.
//  * Sample counts (the FedAvg weight; a site's count is its number of de-identified training
//    images, the same in its Hello and in every Update): capped by the count the site declared
//    in its Hello, then by max_sample_share of the round's total (water-filling: the largest
//    counts are lowered to the level c with c = share x (sum of the capped counts)), so no site
//    claims more weight than its data, nor more than that share whoever it is. When even equal
//    counts exceed the share (share x n < 1), every count becomes the smallest one.
//
// The relative bound and the share need all the round's updates: the aggregator holds admitted
// updates (N models) until the round closes and feeds them to the strategy then. With
// norm_bound absolute or off and max_sample_share 1 nothing is held (streaming strategies stay
// streaming).

// The bound for a round's update norms: multiple x their lower median.
double relative_norm_bound(std::vector<double> norms, double multiple);

// Counts after the share cap (see above); same order as `counts`, every count >= 1.
std::vector<std::int64_t> cap_by_share(const std::vector<std::int64_t>& counts, double share);

// Scales the update's change from `global` by `factor` (0 < factor <= 1): weights become
// global + factor (weights - global), a delta factor x delta; integer counters are left alone.
// Fresh tensors; `update` must be aligned with `global`.
void scale_change(ModelUpdate& update, const NamedTensors& global, double factor);

// What the guard did to one update, for the round's metrics record.
struct GuardAction {
  std::string site;
  std::optional<double> clipped_from;  // the norm before clipping (the bound is in the record)
  std::int64_t claimed = 0;            // the sample count the Update claimed
  std::int64_t counted = 0;            // the count the strategy used
  std::string capped_by;               // "", "hello", "share" or "hello+share"
};

// One round's guard. Not thread-safe.
class UpdateGuard {
 public:
  explicit UpdateGuard(ValidationLimits limits = {});

  void begin_round(const NamedTensors& global);
  // Whether admitted updates must wait for the round to close (see above).
  bool holds() const;
  // An update the validator admitted (its delta_norm set), with the count the site declared in
  // its Hello (nullopt: no Hello since the aggregator started; then the share cap alone
  // applies). Returns the update to give the strategy now (holds() false; clipped when the
  // absolute bound says so), or nullopt when it is held, or refused: see refused().
  std::optional<ModelUpdate> admit(ModelUpdate update, std::optional<std::int64_t> declared);
  // The sample count the last admitted update is counted with (after the Hello cap).
  std::int64_t last_counted() const { return actions_.empty() ? 0 : actions_.back().counted; }
  // Set when the last admit() refused the update (over_bound: refuse): why.
  const std::optional<Rejection>& refused() const { return refused_; }
  // Closes the round: the held updates with the relative bound and share cap applied, in
  // arrival order (refused ones, over_bound: refuse, left out and listed in refusals()).
  std::vector<ModelUpdate> close();

  const std::vector<Rejection>& refusals() const { return late_refusals_; }
  // The round's bound (after close() for the relative one).
  std::optional<double> bound() const { return bound_; }
  // {"norm_bound": b, "clipped": {site: norm}, "capped": {site: {claimed, counted, by}}}.
  nlohmann::json record() const;
  const ValidationLimits& limits() const { return limits_; }

 private:
  // The update, clipped to `bound` (recorded in `action`) when above it; nullopt and refused()
  // set when over_bound is refuse.
  std::optional<ModelUpdate> clip_or_refuse(ModelUpdate update, double bound, GuardAction& action);

  ValidationLimits limits_;
  NamedTensors global_;
  std::vector<ModelUpdate> held_;
  std::vector<GuardAction> actions_;
  std::optional<double> bound_;
  std::optional<Rejection> refused_;
  std::vector<Rejection> late_refusals_;
};

}  // namespace ppreid::agg
