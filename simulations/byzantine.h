#pragma once

// The byzantine experiment (issue 19): how far hostile sites move the federated model under each
// aggregation strategy. One federation per strategy without attack, then one per (hostile count,
// attack, strategy); the hostile sites are the LAST k sites of the partition, hostile from round
// 1 to the end (site_faults.h: what each attack does). Each run is an ordinary federation
// (federation_run.h) with its own strategy and faults, so completed runs are reused on --resume.

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "simulations/federation_run.h"
#include "simulations/sim_config.h"

namespace ppreid::sim {

struct ByzantineRun {
  std::string name;      // "no attack | fedavg", "sign_flip | 2 hostile | median"
  std::string attack;    // describe_fault of the attack; "none" without
  int hostile = 0;       // hostile sites
  std::string strategy;  // NamedStrategy::name
  SimConfig config;      // the simulation's config with this run's strategy and faults
};

// Every run in table order. Throws ppreid::Error before anything runs when a hostile count
// leaves no honest site among `site_ids` or ALIE's z is undefined for it.
std::vector<ByzantineRun> plan_byzantine_runs(const SimConfig& config,
                                              const std::vector<std::string>& site_ids);

// summary.json's "byzantine": {"sites", "hostile_sites": {"1": ["site-7"], ...}, "strategies",
// "attacks", "rows": [...]}, one row per run: attack, hostile, strategy, the final round's mAP,
// rank1, centroid_mAP, centroid_rank1, centroid_protocol, and "aggregator" (what it did with the
// hostile and the honest sites' updates over all rounds); or "error" for a run that failed.
// `results[i]` belongs to plan[i] (nullopt: failed, with errors[i] saying why).
nlohmann::json byzantine_summary(const std::vector<ByzantineRun>& plan,
                                 const std::vector<const FederationResult*>& results,
                                 const std::vector<std::string>& errors);

// A row's "aggregator" record in words, e.g. "hostile 6/6 accepted (6 capped); honest 30/30
// accepted".
std::string describe_aggregator_record(const nlohmann::json& aggregator);

}  // namespace ppreid::sim
