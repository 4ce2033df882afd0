#include "aggregator/round_record.h"

#include <ctime>
#include <sstream>

#include "core/util/atomic_file.h"

namespace ppreid::agg {
namespace fs = std::filesystem;

nlohmann::json RoundRecord::to_json() const {
  nlohmann::json rejected_json = nlohmann::json::array();
  std::map<std::string, int> rejected_counts;
  for (const auto& r : rejected) {
    rejected_json.push_back({{"site", r.site}, {"reason", r.reason}, {"detail", r.detail}});
    ++rejected_counts[r.reason];
  }
  std::int64_t samples = 0;
  for (const auto& [site, n] : accepted) samples += n;
  nlohmann::json j = {{"round", round},
                      {"attempt", attempt},
                      {"outcome", outcome},
                      {"started", started},
                      {"seconds", seconds},
                      {"sites_asked", sites_asked},
                      {"updates_accepted", accepted.size()},
                      {"accepted", accepted},
                      {"samples", samples},
                      {"updates_rejected", rejected.size()},
                      {"rejected_by_reason", rejected_counts},
                      {"rejected", rejected_json},
                      {"silent", silent},
                      {"transport_rejected", transport_rejected},
                      {"aggregation_seconds", aggregation_seconds},
                      {"bytes_in", bytes_in},
                      {"bytes_out", bytes_out}};
  if (train_loss) j["train_loss"] = *train_loss;
  for (const auto& [key, value] : guard.items()) j[key] = value;
  if (!strategy_report.empty()) j["strategy_report"] = strategy_report;
  if (!secure.empty()) j["secure_aggregation"] = secure;
  if (!eval.empty()) j["eval"] = eval;
  return j;
}

MetricsLog::MetricsLog(fs::path file) : file_(std::move(file)) {
  if (!fs::exists(file_)) return;
  std::istringstream in(util::read_file(file_));
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines_.push_back(line);
}

void MetricsLog::append(const nlohmann::json& line) {
  lines_.push_back(line.dump());
  flush();
}

void MetricsLog::replace_last(const nlohmann::json& line) {
  if (lines_.empty()) return append(line);
  lines_.back() = line.dump();
  flush();
}

void MetricsLog::flush() const {
  std::string text;
  for (const auto& l : lines_) text += l + "\n";
  util::write_file_atomic(file_, text);
}

std::string utc_now_iso() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace ppreid::agg
