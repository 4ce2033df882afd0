#pragma once

// The `secure_aggregation:` section of the aggregator config (docs/PROTOCOL.md): whether rounds
// use secure aggregation and with which neighbourhoods, threshold, ranges and stage timeouts.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "aggregator/strategy.h"
#include "protocols/secagg/params.h"

namespace ppreid::util {
class ConfigReader;
}

namespace ppreid::agg {

struct SecureAggregationConfig {
  bool enabled = false;
  std::optional<std::size_t> neighbours;    // k; nullopt (auto): complete graph up to
  std::size_t complete_up_to = 16;          // this many sites, then secagg::neighbours_for
  double dropout = 0.3;                     // the fraction of sites auto neighbours tolerate
  std::optional<std::uint32_t> threshold;   // t; nullopt (auto): majority of a neighbourhood
  double clipping_range = 8.0;              // Flower's defaults
  std::uint64_t quantization_range = std::uint64_t{1} << 22;
  std::optional<std::uint32_t> modulus_bits;  // nullopt (auto): 32, or 64 when 32 could wrap
  // Samples that weigh 1; nullopt (auto): the largest image count the round's sites declared
  // in their Hello.
  std::optional<double> max_weight;
  double clip_norm = 0.0;  // each site clips its update to this L2 norm; 0 = off
  std::chrono::milliseconds stage_timeout{30'000};

  // Reads the section (absent: disabled). Refuses unknown keys and values out of range.
  static SecureAggregationConfig read(util::ConfigReader& section);

  // The section as YAML lines, each prefixed with `indent` (read() gives it back).
  std::string to_yaml(const std::string& indent) const;

  // Empty when `strategy` can run on the sum only; otherwise why it cannot.
  static std::string strategy_problem(StrategyKind strategy);

  // The round's parameters for `sites` sites whose largest declared image count is
  // `largest_declared` (0 when unknown).
  secagg::Params params_for(std::size_t sites, std::uint64_t largest_declared) const;
  // k for a round of `sites` sites (0: complete graph).
  std::size_t neighbours_for(std::size_t sites) const;
};

}  // namespace ppreid::agg
