#pragma once

// `ppreid simulate`: a whole experiment on one machine. Prepares the population and keys, runs
// the experiment's federations (simulations/federation_run.h), the attacks it asks for, and
// writes OUT/config.yaml, metrics.jsonl, summary.json, summary.md, plots/, grids/, report.html.

#include <atomic>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "simulations/federation_run.h"
#include "simulations/sim_config.h"

namespace ppreid::sim {

struct SimulationOptions {
  std::filesystem::path site_binary;  // runner processes: the `ppreid` executable
  const std::atomic<bool>* stop = nullptr;
  bool resume = false;  // reuse a non-empty OUT made by the same config (completed runs are kept)
};

struct SimulationResult {
  nlohmann::json summary;  // what summary.json holds (reproducible: no timings)
  std::vector<FederationResult> runs;
  double seconds = 0;
  std::filesystem::path report;  // OUT/report.html
  std::string summary_table;     // the main table as text, for the terminal
};

// Throws ppreid::Error for an OUT that is not empty (without resume) or holds another config's
// work, and for what the steps throw.
SimulationResult run_simulation(const SimConfig& config, const std::filesystem::path& out,
                                const SimulationOptions& options);

}  // namespace ppreid::sim
