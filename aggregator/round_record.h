#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ppreid::agg {

// What happened in one attempt at a round: one line of metrics.jsonl.
struct RoundRecord {
  std::int64_t round = 0;
  int attempt = 1;
  std::string outcome;  // "completed" | "retry" (too few updates) | "stopped"
  std::string started;  // UTC, ISO 8601
  double seconds = 0.0;
  std::vector<std::string> sites_asked;
  std::map<std::string, std::int64_t> accepted;  // site -> samples
  struct Rejected {
    std::string site, reason, detail;
  };
  // updates the validator refused, and sites that reported they could not train the round's
  // Task (reason "site_error", detail: their message)
  std::vector<Rejected> rejected;
  std::vector<std::string> silent;               // asked, never answered
  std::map<std::string, std::uint64_t> transport_rejected;  // error code -> messages refused
  double aggregation_seconds = 0.0;
  std::uint64_t bytes_in = 0, bytes_out = 0;
  std::optional<double> train_loss;  // sample-weighted mean of the sites' reported loss
  // The UpdateGuard's record: {"norm_bound", "bound", "clipped": {site: norm}, "capped": {site:
  // {claimed, counted, by}}}, written at the top level of the line.
  nlohmann::json guard = nlohmann::json::object();
  // Strategy::round_report() (e.g. the updates Krum selected); "strategy_report" when not empty.
  nlohmann::json strategy_report = nlohmann::json::object();
  nlohmann::json eval = nlohmann::json::object();
  // Secure aggregation's record of the round (survivors, dropped, threshold, stage times...);
  // "secure_aggregation" when not empty.
  nlohmann::json secure = nlohmann::json::object();

  nlohmann::json to_json() const;
};

// DIR/metrics.jsonl, rewritten atomically on every change, so a crash leaves whole lines only.
class MetricsLog {
 public:
  explicit MetricsLog(std::filesystem::path file);
  void append(const nlohmann::json& line);
  // Replaces the last line (a round's line gains its evaluation after the checkpoint).
  void replace_last(const nlohmann::json& line);
  std::size_t size() const { return lines_.size(); }
  const std::filesystem::path& file() const { return file_; }

 private:
  void flush() const;
  std::filesystem::path file_;
  std::vector<std::string> lines_;
};

// UTC now as "2026-11-22T03:18:07Z".
std::string utc_now_iso();

}  // namespace ppreid::agg
