#include "core/util/progress.h"

#include <unistd.h>

#include <cstdio>

namespace ppreid::util {

Progress::Progress(std::int64_t total, std::string label, std::string unit)
    : total_(total),
      label_(std::move(label)),
      unit_(std::move(unit)),
      enabled_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() { finish(); }

double Progress::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

double Progress::rate() const {
  double s = seconds();
  return s > 0 ? static_cast<double>(done_.load()) / s : 0.0;
}

void Progress::tick(std::int64_t n) {
  done_ += n;
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  std::unique_lock lock(mu_, std::try_to_lock);
  if (!lock.owns_lock() || now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  draw(false);
}

void Progress::set_suffix(const std::string& suffix) {
  std::lock_guard lock(mu_);
  suffix_ = suffix;
}

void Progress::finish() {
  std::lock_guard lock(mu_);
  if (finished_) return;
  finished_ = true;
  if (enabled_) draw(true);
}

void Progress::draw(bool final) {
  constexpr int kWidth = 30;
  std::int64_t done = done_.load();
  double fraction = total_ > 0 ? static_cast<double>(done) / static_cast<double>(total_) : 0.0;
  int filled = static_cast<int>(fraction * kWidth);
  std::string bar(static_cast<size_t>(filled), '=');
  if (filled < kWidth) bar += '>' + std::string(static_cast<size_t>(kWidth - filled - 1), ' ');
  std::fprintf(stderr, "\r%s [%s] %lld/%lld %.0f %s/s %s\033[K%s", label_.c_str(), bar.c_str(),
               static_cast<long long>(done), static_cast<long long>(total_), rate(),
               unit_.c_str(), suffix_.c_str(), final ? "\n" : "");
  std::fflush(stderr);
}

}  // namespace ppreid::util
