#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace ppreid::util {

// A one-line progress bar on stderr with a rate, redrawn at most ten times a second, and only
// when stderr is a terminal (logs and CI output stay clean). Safe to tick from many threads.
class Progress {
 public:
  Progress(std::int64_t total, std::string label, std::string unit = "img");
  ~Progress();
  void tick(std::int64_t n = 1);
  // Extra text after the counters (e.g. loss parts); shown on the next redraw.
  void set_suffix(const std::string& suffix);
  void finish();
  double seconds() const;
  double rate() const;  // units per second so far

 private:
  void draw(bool final);

  std::int64_t total_;
  std::string label_, unit_, suffix_;
  bool enabled_;
  bool finished_ = false;
  std::atomic<std::int64_t> done_{0};
  std::chrono::steady_clock::time_point start_, last_draw_;
  std::mutex mu_;
};

}  // namespace ppreid::util
