#pragma once

// Helpers shared by the files of the site runtime (site.cpp, site_rounds.cpp); not part of the
// client's interface.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

namespace ppreid::client::detail {

inline constexpr std::chrono::milliseconds kPoll{100};  // how often the loop looks at the stop flag

// Sleeps `d` in short slices; false when `stop` was set meanwhile.
inline bool sleep_unless_stopped(std::chrono::milliseconds d, const std::atomic<bool>& stop) {
  using Clock = std::chrono::steady_clock;
  const auto until = Clock::now() + d;
  while (Clock::now() < until) {
    if (stop.load()) return false;
    std::this_thread::sleep_for(std::min<Clock::duration>(kPoll, until - Clock::now()));
  }
  return !stop.load();
}

}  // namespace ppreid::client::detail
