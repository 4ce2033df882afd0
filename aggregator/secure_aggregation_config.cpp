#include "aggregator/secure_aggregation_config.h"

#include <cmath>
#include <sstream>

#include "core/util/config.h"
#include "protocols/secagg/graph.h"

namespace ppreid::agg {
namespace {

// "auto" or a number in [lo, hi].
template <typename T>
std::optional<T> auto_or(util::ConfigReader& s, const std::string& key, std::optional<T> current,
                         T lo, T hi) {
  if (!s.has(key)) return current;
  std::string text = "auto";
  s.get(key, text);
  if (text == "auto") return std::nullopt;
  T value{};
  s.get(key, value, lo, hi);
  return value;
}

}  // namespace

SecureAggregationConfig SecureAggregationConfig::read(util::ConfigReader& s) {
  SecureAggregationConfig c;
  s.get("enabled", c.enabled);
  c.neighbours = auto_or<std::size_t>(s, "neighbours", c.neighbours, 2, 100000);
  s.get("complete_up_to", c.complete_up_to, std::size_t{2}, std::size_t{100000});
  s.get("dropout", c.dropout, 0.0, 0.45);
  c.threshold = auto_or<std::uint32_t>(s, "threshold", c.threshold, 2u, 100000u);
  s.get("clipping_range", c.clipping_range, 1e-6, 1e6);
  s.get("quantization_range", c.quantization_range, std::uint64_t{256}, std::uint64_t{1} << 48);
  c.modulus_bits = auto_or<std::uint32_t>(s, "modulus_bits", c.modulus_bits, 32u, 64u);
  if (c.modulus_bits && *c.modulus_bits != 32 && *c.modulus_bits != 64)
    s.fail("modulus_bits", "must be 32, 64 or auto, not " + std::to_string(*c.modulus_bits));
  c.max_weight = auto_or<double>(s, "max_weight", c.max_weight, 1.0, 1e12);
  s.get("clip_norm", c.clip_norm, 0.0, 1e12);
  double seconds = c.stage_timeout.count() / 1000.0;
  s.get("stage_timeout", seconds, 0.05, 86400.0);
  c.stage_timeout = std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(seconds * 1000)));
  s.finish();
  return c;
}

std::string SecureAggregationConfig::to_yaml(const std::string& indent) const {
  auto opt = [](const auto& v) { return v ? std::to_string(*v) : std::string("auto"); };
  std::ostringstream y;
  y.precision(17);
  y << indent << "enabled: " << (enabled ? "true" : "false") << "\n"
    << indent << "neighbours: " << opt(neighbours) << "\n"
    << indent << "complete_up_to: " << complete_up_to << "\n"
    << indent << "dropout: " << dropout << "\n"
    << indent << "threshold: " << opt(threshold) << "\n"
    << indent << "clipping_range: " << clipping_range << "\n"
    << indent << "quantization_range: " << quantization_range << "\n"
    << indent << "modulus_bits: " << opt(modulus_bits) << "\n"
    << indent << "max_weight: ";
  if (max_weight) y << *max_weight;
  else y << "auto";
  y << "\n"
    << indent << "clip_norm: " << clip_norm << "\n"
    << indent << "stage_timeout: " << static_cast<double>(stage_timeout.count()) / 1000.0 << "\n";
  return y.str();
}

std::string SecureAggregationConfig::strategy_problem(StrategyKind strategy) {
  switch (strategy) {
    case StrategyKind::kFedAvg:
    case StrategyKind::kFedProx:
    case StrategyKind::kFedAdam:
    case StrategyKind::kFedYogi:
      return {};
    default:
      return "strategy " + std::string(to_string(strategy)) +
             " needs every site's own update, which secure aggregation hides from the "
             "aggregator (it learns only the sum); use fedavg, fedprox, fedadam or fedyogi, or "
             "turn secure_aggregation off";
  }
}

secagg::Params SecureAggregationConfig::params_for(std::size_t sites,
                                                   std::uint64_t largest_declared) const {
  secagg::Params p;
  p.clipping_range = clipping_range;
  p.quantization_range = quantization_range;
  p.modulus_bits = modulus_bits ? *modulus_bits : secagg::modulus_bits_for(sites, quantization_range);
  p.max_weight = max_weight ? *max_weight
                            : static_cast<double>(std::max<std::uint64_t>(1, largest_declared));
  p.clip_norm = clip_norm;
  p.sites = static_cast<std::uint32_t>(sites);
  return p;
}

std::size_t SecureAggregationConfig::neighbours_for(std::size_t sites) const {
  if (neighbours) return *neighbours;
  return secagg::neighbours_for(sites, dropout, complete_up_to);
}

}  // namespace ppreid::agg
