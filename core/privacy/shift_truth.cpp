#include "core/privacy/shift_truth.h"

#include <map>
#include <utility>
#include <vector>

namespace ppreid::privacy {

HitPidsFn hit_pids_from_shift_plan(const deid::pis::ShiftPlan& plan, std::string source) {
  std::map<int, std::vector<int>> table;
  for (const auto& [pid, shift] : plan.by_pid) {
    std::vector<int> hits = {shift.original_pid};
    if (!plan.cross_dataset)
      for (const auto& p : shift.partners) hits.push_back(p.pid);
    table[shift.new_pid] = std::move(hits);
  }
  table[0] = {0};
  return hit_pids_from_table(std::move(table), std::move(source));
}

}  // namespace ppreid::privacy
