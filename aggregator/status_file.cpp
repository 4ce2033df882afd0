#include "aggregator/status_file.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <sstream>
#include <vector>

#include "aggregator/round_record.h"
#include "core/util/atomic_file.h"
#include "core/util/error.h"

namespace ppreid::agg {
namespace fs = std::filesystem;

StatusFile::StatusFile(fs::path dir, std::chrono::milliseconds min_interval)
    : file_(std::move(dir) / "status.json"), min_interval_(min_interval) {}

void StatusFile::write(nlohmann::json status, bool force) {
  auto now = std::chrono::steady_clock::now();
  if (!force && last_.time_since_epoch().count() != 0 && now - last_ < min_interval_) return;
  last_ = now;
  status["pid"] = static_cast<long>(::getpid());
  status["updated_at"] = utc_now_iso();
  util::write_file_atomic(file_, status.dump(2) + "\n");
}

std::optional<nlohmann::json> read_status(const fs::path& state_dir) {
  const fs::path file = state_dir / "status.json";
  if (!fs::exists(file)) return std::nullopt;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(util::read_file(file));
  } catch (const nlohmann::json::exception& e) {
    throw Error("'" + file.string() + "' is not valid JSON (" + e.what() +
                "); it is rewritten by the running aggregator, or was damaged");
  }
  if (!j.is_object() || !j.contains("pid") || !j["pid"].is_number_integer())
    throw Error("'" + file.string() + "' has no pid: not an aggregator status file");
  const long pid = j["pid"].get<long>();
  // Signal 0 checks that the process exists; EPERM means it exists under another user.
  j["alive"] = pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
  return j;
}

std::string format_status(const nlohmann::json& s) {
  auto text = [&](const char* key) {
    return s.contains(key) ? (s[key].is_string() ? s[key].get<std::string>() : s[key].dump())
                           : std::string("-");
  };
  std::ostringstream out;
  const bool alive = s.value("alive", false);
  out << "federation  " << text("federation_id") << "\n"
      << "process     pid " << text("pid") << (alive ? " (running)" : " (not running)") << "\n"
      << "phase       " << text("phase") << (alive ? "" : " (as last written)") << "\n"
      << "round       " << text("round") << " in progress, " << text("completed_rounds")
      << " completed of " << text("rounds") << "\n"
      << "updated     " << text("updated_at") << "\n";
  if (s.contains("progress")) {
    const auto& p = s["progress"];
    out << "this round  asked " << p.value("asked", 0) << ", accepted " << p.value("accepted", 0)
        << ", rejected " << p.value("rejected", 0) << ", attempt " << p.value("attempt", 1)
        << "\n";
  }
  if (s.contains("sites") && s["sites"].is_array()) {
    out << "sites       " << s["sites"].size() << " live\n";
    char line[256];
    std::snprintf(line, sizeof line, "  %-20s %-22s %8s %8s %-8s %s\n", "site", "status",
                  "images", "ids", "method", "last seen");
    out << line;
    for (const auto& site : s["sites"]) {
      std::snprintf(line, sizeof line, "  %-20s %-22s %8lld %8lld %-8s %.1f s ago\n",
                    site.value("id", std::string("?")).c_str(),
                    site.value("status", std::string("-")).c_str(),
                    static_cast<long long>(site.value("images", 0LL)),
                    static_cast<long long>(site.value("identities", 0LL)),
                    site.value("deid_method", std::string("-")).c_str(),
                    site.value("last_seen_seconds_ago", 0.0));
      out << line;
    }
  }
  return out.str();
}

std::string format_rounds(const fs::path& state_dir, std::size_t max_rows) {
  const fs::path file = state_dir / "metrics.jsonl";
  if (!fs::exists(file)) return {};
  std::vector<nlohmann::json> rounds;
  std::istringstream in(util::read_file(file));
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.value("outcome", std::string()) == "completed") rounds.push_back(j);
  }
  if (rounds.empty()) return {};
  std::ostringstream out;
  char row[200];
  std::snprintf(row, sizeof row, "%6s %8s %8s %9s %10s %8s %8s %9s\n", "round", "attempt",
                "updates", "samples", "train loss", "mAP", "rank-1", "seconds");
  out << row;
  const std::size_t first = rounds.size() > max_rows ? rounds.size() - max_rows : 0;
  if (first > 0) out << "  (" << first << " earlier rounds in " << file.string() << ")\n";
  for (std::size_t i = first; i < rounds.size(); ++i) {
    const auto& r = rounds[i];
    // The sites' query sets when they evaluated, else the aggregator's held-out dataset.
    double map = -1, rank1 = -1;
    if (r.contains("eval")) {
      const auto& e = r["eval"];
      if (e.contains("sites") && e["sites"].contains("mAP")) {
        map = e["sites"]["mAP"].get<double>();
        rank1 = e["sites"].value("rank1", -1.0);
      } else if (e.contains("dataset")) {
        map = e["dataset"]["instance"]["mAP"].get<double>();
        rank1 = e["dataset"]["instance"]["rank1"].get<double>();
      }
    }
    auto num = [](double v, const char* fmt) {
      char b[32];
      if (v < 0) return std::string("-");
      std::snprintf(b, sizeof b, fmt, v);
      return std::string(b);
    };
    std::snprintf(row, sizeof row, "%6lld %8d %8d %9lld %10s %8s %8s %9.1f\n",
                  static_cast<long long>(r.value("round", 0LL)), r.value("attempt", 1),
                  r.value("updates_accepted", 0), static_cast<long long>(r.value("samples", 0LL)),
                  num(r.value("train_loss", -1.0), "%.4f").c_str(), num(map, "%.4f").c_str(),
                  num(rank1, "%.4f").c_str(), r.value("seconds", 0.0));
    out << row;
  }
  return out.str();
}

}  // namespace ppreid::agg
