#pragma once

// One simulated federation: the real aggregator (in this process) and N real site runtimes
// (threads or child processes) over CURVE-encrypted ZeroMQ on loopback, every site de-identifying
// its own raw data with the same method. The run directory keeps everything a production
// deployment would: generated configs, stores, checkpoints, metrics.jsonl.

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "simulations/population.h"
#include "simulations/sim_config.h"

namespace ppreid::sim {

// One completed round as the aggregator recorded it (its last attempt) and evaluated it on the
// held-out test split.
struct RoundSummary {
  std::int64_t round = 0;
  int attempts = 1;
  double map = 0, rank1 = 0;                    // instance retrieval
  double centroid_map = 0, centroid_rank1 = 0;  // centroid retrieval (identity means)
  std::string centroid_protocol;                // the protocol of those two (reference, ...)
  std::optional<double> train_loss;
  std::vector<std::string> accepted;
  std::vector<std::pair<std::string, std::string>> rejected;  // site, reason
  std::vector<std::string> silent;
  // Sites whose update the aggregator clipped (norm bound) or whose sample count it capped, when
  // its metrics record says (absent: this aggregator does not report it).
  std::optional<std::vector<std::string>> clipped, capped;
  nlohmann::json to_json() const;
};

// What happened to an injected fault, round by round.
struct FaultOutcome {
  FaultSpec fault;
  // round -> what the aggregator did with the site: "accepted", "accepted (clipped, capped)",
  // "rejected: <reason>", "silent", "not asked" (the site had gone). Every round, also those
  // outside the fault's [from_round, until_round], so a site's recovery shows.
  std::vector<std::pair<std::int64_t, std::string>> per_round;
  nlohmann::json to_json() const;
};

struct FederationResult {
  std::string name;    // the run's name (a method name, "dp A eps=1000", ...)
  std::string method;  // deid::describe_method of what the sites used
  std::vector<RoundSummary> rounds;
  std::vector<FaultOutcome> faults;
  double deid_ssim = 0, deid_psnr = 0;  // mean over the sites' de-identified train images
  double seconds = 0;                   // wall time (not part of to_json: not reproducible)
  const RoundSummary& final_round() const { return rounds.back(); }
  // Everything but timings: two runs with the same seeds give the same JSON.
  nlohmann::json to_json() const;
  static FederationResult from_json(const nlohmann::json& j);
};

struct FederationRunOptions {
  std::filesystem::path site_binary;  // runner processes: the `ppreid` executable
  const std::atomic<bool>* stop = nullptr;
};

// Runs `method` through a whole federation in `run_dir` (created; reused when it holds a
// complete result.json of the same settings, which is then returned without running again).
// Throws ppreid::Error when a site fails, the aggregator gives up or a stop was requested.
FederationResult run_federation(const SimConfig& config, const Population& population,
                                const SimKeys& keys, const NamedMethod& method,
                                const std::filesystem::path& run_dir,
                                const FederationRunOptions& options);

// The method as the sites run it: DP and PIS draw their noise from a DRBG seeded from the
// simulation seed and the site, so a rerun reproduces every image.
deid::MethodSpec seeded_method(const deid::MethodSpec& spec, std::uint64_t seed);

}  // namespace ppreid::sim
