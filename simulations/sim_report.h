#pragma once

// The human side of a simulation's output: summary.md (tables), plots/*.png (mAP per round, the
// dp-sweep curves, the privacy-utility trade-off), grids/*.png (raw vs de-identified crops) and
// report.html, one self-contained page with all of it.

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "simulations/federation_run.h"
#include "simulations/population.h"
#include "simulations/sim_config.h"

namespace ppreid::sim {

struct ReportInputs {
  const SimConfig& config;
  const Population& population;
  const std::vector<FederationResult>& runs;
  const std::vector<std::filesystem::path>& run_dirs;
  const nlohmann::json& summary;  // what summary.json holds
  std::filesystem::path out;
  std::vector<std::filesystem::path> attack_strips;  // PNGs of the gradient-inversion replay
  double seconds = 0;                                // wall time, for the report's footer
};

// Writes everything and returns the experiment's main table as markdown (for the terminal).
std::string write_report(const ReportInputs& inputs);

}  // namespace ppreid::sim
