#include "aggregator/strategy.h"

#include <array>
#include <cmath>
#include <sstream>
#include <variant>

#include "aggregator/coordinate_wise.h"
#include "aggregator/fedavg.h"
#include "aggregator/fedopt.h"
#include "aggregator/fedprox.h"
#include "aggregator/krum.h"
#include "core/util/config.h"
#include "core/util/error.h"

namespace ppreid::agg {
namespace {

constexpr std::array<std::pair<StrategyKind, std::string_view>, 9> kNames = {{
    {StrategyKind::kFedAvg, "fedavg"},
    {StrategyKind::kFedProx, "fedprox"},
    {StrategyKind::kFedAdam, "fedadam"},
    {StrategyKind::kFedYogi, "fedyogi"},
    {StrategyKind::kMedian, "median"},
    {StrategyKind::kTrimmedMean, "trimmed_mean"},
    {StrategyKind::kKrum, "krum"},
    {StrategyKind::kMultiKrum, "multi_krum"},
    {StrategyKind::kBulyan, "bulyan"},
}};

std::vector<std::string> names() {
  std::vector<std::string> out;
  for (const auto& [kind, name] : kNames) out.emplace_back(name);
  return out;
}

bool is_fedopt(StrategyKind k) { return k == StrategyKind::kFedAdam || k == StrategyKind::kFedYogi; }
bool is_krum_family(StrategyKind k) {
  return k == StrategyKind::kKrum || k == StrategyKind::kMultiKrum || k == StrategyKind::kBulyan;
}
bool is_multi_krum(StrategyKind k) { return k == StrategyKind::kMultiKrum; }

// Which hyperparameters each strategy reads; the rest must not be set for it.
struct Field {
  const char* key;
  std::variant<double StrategyConfig::*, std::int64_t StrategyConfig::*, bool StrategyConfig::*>
      member;
  bool (*applies)(StrategyKind);
};
const std::array<Field, 9> kFields = {{
    {"mu", &StrategyConfig::mu, [](StrategyKind k) { return k == StrategyKind::kFedProx; }},
    {"server_lr", &StrategyConfig::server_lr, is_fedopt},
    {"beta1", &StrategyConfig::beta1, is_fedopt},
    {"beta2", &StrategyConfig::beta2, is_fedopt},
    {"tau", &StrategyConfig::tau, is_fedopt},
    {"trim_fraction", &StrategyConfig::trim_fraction,
     [](StrategyKind k) { return k == StrategyKind::kTrimmedMean; }},
    {"f", &StrategyConfig::f, is_krum_family},
    {"m", &StrategyConfig::m, is_multi_krum},
    {"weighted", &StrategyConfig::weighted, is_multi_krum},
}};

}  // namespace

std::string_view to_string(StrategyKind kind) {
  for (const auto& [k, name] : kNames)
    if (k == kind) return name;
  return "unknown";
}

StrategyKind strategy_kind_from_string(std::string_view name) {
  for (const auto& [kind, n] : kNames)
    if (n == name) return kind;
  std::string list;
  for (const auto& n : names()) list += (list.empty() ? "" : ", ") + n;
  throw Error("unknown aggregation strategy '" + std::string(name) + "'; known: " + list);
}

void StrategyConfig::validate() const {
  auto fail = [&](const char* field, double value, const char* allowed) {
    std::ostringstream msg;
    msg << "strategy " << to_string(kind) << ": " << field << " = " << value << " is out of range ("
        << allowed << ")";
    throw Error(msg.str());
  };
  auto finite = [](double v) { return std::isfinite(v); };
  if (kind == StrategyKind::kFedProx && !(finite(mu) && mu >= 0)) fail("mu", mu, ">= 0");
  if (is_fedopt(kind)) {
    if (!(finite(server_lr) && server_lr > 0)) fail("server_lr", server_lr, "> 0");
    if (!(beta1 >= 0 && beta1 < 1)) fail("beta1", beta1, "0 <= beta1 < 1");
    if (!(beta2 >= 0 && beta2 < 1)) fail("beta2", beta2, "0 <= beta2 < 1");
    if (!(finite(tau) && tau > 0)) fail("tau", tau, "> 0");
  }
  if (kind == StrategyKind::kTrimmedMean && !(trim_fraction >= 0 && trim_fraction < 0.5))
    fail("trim_fraction", trim_fraction, "0 <= trim_fraction < 0.5, per side");
  if (is_krum_family(kind) && !(f >= 0 && f <= (1 << 20)))
    fail("f", static_cast<double>(f), "0 <= f, the number of hostile sites assumed");
  if (kind == StrategyKind::kMultiKrum && !(m >= 0 && m <= (1 << 20)))
    fail("m", static_cast<double>(m), "m >= 1 updates kept, or 0 for n - f");
}

std::size_t StrategyConfig::min_updates() const {
  switch (kind) {
    case StrategyKind::kKrum: return static_cast<std::size_t>(2 * f + 3);
    case StrategyKind::kMultiKrum:
      return static_cast<std::size_t>(std::max<std::int64_t>(2 * f + 3, m));
    case StrategyKind::kBulyan: return static_cast<std::size_t>(4 * f + 3);
    default: return 1;
  }
}

std::string StrategyConfig::count_problem(std::size_t n) const {
  if (n >= min_updates()) return {};
  std::ostringstream msg;
  const std::string name(to_string(kind));
  if (kind == StrategyKind::kBulyan) {
    msg << name << " with f = " << f << " needs n >= 4f + 3 = " << 4 * f + 3 << " updates";
  } else if (is_krum_family(kind) && n < static_cast<std::size_t>(2 * f + 3)) {
    msg << name << " with f = " << f << " needs n > 2f + 2 = " << 2 * f + 2 << " updates";
  } else if (kind == StrategyKind::kMultiKrum) {
    msg << name << " with m = " << m << " needs n >= m = " << m << " updates";
  } else {
    msg << name << " needs at least 1 update";
  }
  msg << "; the round has " << n;
  return msg.str();
}

nlohmann::json StrategyConfig::to_json() const {
  nlohmann::json j = {{"name", std::string(to_string(kind))}};
  for (const auto& field : kFields)
    if (field.applies(kind))
      std::visit([&](auto member) { j[field.key] = this->*member; }, field.member);
  return j;
}

StrategyConfig StrategyConfig::from_json(const nlohmann::json& j, const std::string& where) {
  StrategyConfig c;
  try {
    c.kind = strategy_kind_from_string(j.at("name").get<std::string>());
    for (const auto& field : kFields)
      if (field.applies(c.kind) && j.contains(field.key))
        std::visit(
            [&](auto member) {
              c.*member = j.at(field.key).get<std::remove_reference_t<decltype(c.*member)>>();
            },
            field.member);
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + ": malformed strategy settings (" + e.what() + ")");
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
  try {
    c.validate();
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
  return c;
}

StrategyConfig StrategyConfig::read(util::ConfigReader& section) {
  StrategyConfig c;
  std::string name(to_string(c.kind));
  section.get_choice("name", name, names());
  c.kind = strategy_kind_from_string(name);
  for (const auto& field : kFields) {
    if (field.applies(c.kind)) {
      std::visit([&](auto member) { section.get(field.key, c.*member); }, field.member);
    } else if (section.has(field.key)) {
      section.fail(field.key, "does not apply to strategy '" + name + "'");
    }
  }
  try {
    c.validate();
  } catch (const Error& e) {
    section.fail("name", e.what());
  }
  section.finish();
  return c;
}

void Strategy::require_round(const char* what) const {
  if (!in_round_)
    throw Error(std::string(to_string(kind())) + ": " + what + " outside a round; call " +
                "begin_round first");
}

void Strategy::begin_round(const NamedTensors& global) {
  if (global.empty()) throw Error(std::string(to_string(kind())) + ": empty global model");
  abandon();
  global_ = global;
  in_round_ = true;
  try {
    on_begin();
  } catch (...) {
    abandon();
    throw;
  }
}

void Strategy::add(const ModelUpdate& update) {
  require_round("add");
  require_aligned(global_, update, to_string(kind()));
  if (update.samples < 1)
    throw Error(std::string(to_string(kind())) + ": update of site '" + update.site +
                "' has no samples");
  on_add(update);
  ++count_;
}

NamedTensors Strategy::finish() {
  require_round("finish");
  if (count_ == 0)
    throw Error(std::string(to_string(kind())) + ": no update to aggregate in this round; " +
                "retry the round");
  if (std::string problem = config_.count_problem(count_); !problem.empty())
    throw Error(problem + "; retry the round with more sites");
  NamedTensors out = on_finish();
  abandon();
  return out;
}

void Strategy::abandon() {
  on_clear();
  global_.clear();
  count_ = 0;
  in_round_ = false;
}

StrategyState Strategy::state() const { return StrategyState{kind(), nlohmann::json::object(), {}}; }

void Strategy::require_kind(const StrategyState& state) const {
  if (state.kind != kind())
    throw Error("the saved aggregator state was written by strategy '" +
                std::string(to_string(state.kind)) + "' but the config says '" +
                std::string(to_string(kind())) + "'; set the strategy back, or start a new " +
                "federation in another state directory");
}

void Strategy::restore(const StrategyState& state, const NamedTensors&) {
  require_kind(state);
  if (!state.tensors.empty())
    throw Error("the saved state of strategy '" + std::string(to_string(kind())) + "' holds " +
                std::to_string(state.tensors.size()) + " tensors, but it keeps none");
}

std::unique_ptr<Strategy> make_strategy(const StrategyConfig& config) {
  config.validate();
  switch (config.kind) {
    case StrategyKind::kFedAvg: return std::make_unique<FedAvg>(config);
    case StrategyKind::kFedProx: return std::make_unique<FedProx>(config);
    case StrategyKind::kFedAdam:
    case StrategyKind::kFedYogi: return std::make_unique<FedOpt>(config);
    case StrategyKind::kMedian:
    case StrategyKind::kTrimmedMean: return std::make_unique<CoordinateWise>(config);
    case StrategyKind::kKrum:
    case StrategyKind::kMultiKrum:
    case StrategyKind::kBulyan: return std::make_unique<Krum>(config);
  }
  throw Error("unknown aggregation strategy");
}

}  // namespace ppreid::agg
