#pragma once

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace ppreid::agg {

// DIR/status.json: the daemon's live state (phase, round, sites, progress), rewritten atomically
// when it changes and at most every `min_interval` otherwise, for `ppreid aggregator status`.
// Only ids, counts and times: nothing secret.
class StatusFile {
 public:
  explicit StatusFile(std::filesystem::path dir,
                      std::chrono::milliseconds min_interval = std::chrono::milliseconds(1000));
  // Writes `status` (plus pid and updated_at) when `force` or when min_interval has passed.
  void write(nlohmann::json status, bool force);
  const std::filesystem::path& file() const { return file_; }

 private:
  std::filesystem::path file_;
  std::chrono::milliseconds min_interval_;
  std::chrono::steady_clock::time_point last_{};
};

// The status.json of `state_dir`, or nullopt when no daemon ever ran there. Adds "alive":
// whether the process that wrote it still runs. Throws ppreid::Error for an unreadable file.
std::optional<nlohmann::json> read_status(const std::filesystem::path& state_dir);

// Human-readable rendering of read_status(): a header and one row per site.
std::string format_status(const nlohmann::json& status);

// The last `max_rows` completed rounds of DIR/metrics.jsonl as a table: round, attempt, updates,
// samples, train loss, global mAP / rank-1 (site evaluation, else the held-out dataset), seconds.
// Empty when no round has completed.
std::string format_rounds(const std::filesystem::path& state_dir, std::size_t max_rows = 20);

}  // namespace ppreid::agg
