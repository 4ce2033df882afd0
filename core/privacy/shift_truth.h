#pragma once

// Who the labels of a PIS release stand for, read from its decrypted one-time key: the
// evaluator's side of the identity and attribute attacks on identity-shifted data.

#include <string>

#include "core/deid/pis/shift_plan.h"
#include "core/privacy/identity_attack.h"

namespace ppreid::privacy {

// new pid -> {original pid, partner pids...}; distractors (label 0) stand for nobody. Partners
// of a cross-dataset plan are people of another dataset, so only the original pid counts then.
// `source` names the key file in errors.
HitPidsFn hit_pids_from_shift_plan(const deid::pis::ShiftPlan& plan, std::string source);

}  // namespace ppreid::privacy
