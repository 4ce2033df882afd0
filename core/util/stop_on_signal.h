#pragma once

#include <signal.h>

#include <atomic>
#include <thread>

namespace ppreid::util {

// SIGINT and SIGTERM are blocked in every thread (LibTorch's and ZeroMQ's inherit the mask, so
// construct this before starting any) and taken by one thread in sigwait(), which sets the stop
// flag: no handler interrupts a system call halfway, and long-running commands finish or abandon
// their current step before they clean up.
class StopOnSignal {
 public:
  StopOnSignal();
  ~StopOnSignal();
  StopOnSignal(const StopOnSignal&) = delete;
  StopOnSignal& operator=(const StopOnSignal&) = delete;
  const std::atomic<bool>& flag() const { return stop_; }

 private:
  sigset_t signals_{};
  std::atomic<bool> stop_{false};
  std::atomic<bool> done_{false};
  std::thread waiter_;
};

}  // namespace ppreid::util
