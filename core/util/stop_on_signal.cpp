#include "core/util/stop_on_signal.h"

#include <pthread.h>

#include <cstring>

#include <spdlog/spdlog.h>

namespace ppreid::util {

StopOnSignal::StopOnSignal() {
  sigemptyset(&signals_);
  sigaddset(&signals_, SIGINT);
  sigaddset(&signals_, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
  waiter_ = std::thread([this] {
    int signal = 0;
    sigwait(&signals_, &signal);
    if (!done_.load()) {
      spdlog::info("{} received: stopping after the current step", strsignal(signal));
      stop_.store(true);
    }
  });
}

StopOnSignal::~StopOnSignal() {
  done_.store(true);
  pthread_kill(waiter_.native_handle(), SIGTERM);  // wakes sigwait(); the signal is blocked
  waiter_.join();
}

}  // namespace ppreid::util
