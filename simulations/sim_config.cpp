#include "simulations/sim_config.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <utility>

#include "core/data/synth/generator.h"
#include "core/deid/method_config.h"
#include "core/util/atomic_file.h"
#include "core/util/config.h"
#include "core/util/error.h"
#include "core/util/paths.h"
#include "simulations/report/table.h"

namespace ppreid::sim {
namespace fs = std::filesystem;

std::string_view to_string(Experiment e) {
  switch (e) {
    case Experiment::kFederation:
      return "federation";
    case Experiment::kPrivacyUtility:
      return "privacy-utility";
    case Experiment::kDpSweep:
      return "dp-sweep";
    case Experiment::kByzantine:
      return "byzantine";
  }
  return "?";
}

namespace {

constexpr std::array<std::pair<FaultSpec::Kind, std::string_view>, 9> kFaultKinds = {{
    {FaultSpec::Kind::kDropout, "dropout"},
    {FaultSpec::Kind::kStraggler, "straggler"},
    {FaultSpec::Kind::kNan, "nan"},
    {FaultSpec::Kind::kScale, "scale"},
    {FaultSpec::Kind::kSignFlip, "sign_flip"},
    {FaultSpec::Kind::kGaussian, "gaussian"},
    {FaultSpec::Kind::kAlie, "alie"},
    {FaultSpec::Kind::kLabelFlip, "label_flip"},
    {FaultSpec::Kind::kSampleLie, "sample_lie"},
}};

bool is_byzantine_kind(FaultSpec::Kind k) {
  using K = FaultSpec::Kind;
  return k != K::kDropout && k != K::kStraggler && k != K::kNan;
}

std::vector<std::string> fault_kind_names(bool byzantine_only) {
  std::vector<std::string> out;
  for (const auto& [kind, name] : kFaultKinds)
    if (!byzantine_only || is_byzantine_kind(kind)) out.emplace_back(name);
  return out;
}

std::string joined(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : ", ") + w;
  return out;
}

}  // namespace

std::string_view to_string(FaultSpec::Kind kind) {
  for (const auto& [k, name] : kFaultKinds)
    if (k == kind) return name;
  return "?";
}

FaultSpec::Kind fault_kind_from_string(std::string_view name) {
  for (const auto& [kind, n] : kFaultKinds)
    if (n == name) return kind;
  throw Error("unknown fault kind '" + std::string(name) + "'; known: " +
              joined(fault_kind_names(false)));
}

std::string describe_fault(const FaultSpec& f) {
  std::string text(to_string(f.kind));
  switch (f.kind) {
    case FaultSpec::Kind::kStraggler:
      return text + " " + report::format_general(static_cast<double>(f.delay.count()) / 1000.0) +
             " s";
    case FaultSpec::Kind::kSignFlip:
      return f.factor == 1.0 ? text : text + " x" + report::format_general(f.factor);
    case FaultSpec::Kind::kScale:
    case FaultSpec::Kind::kSampleLie:
      return text + " x" + report::format_general(f.factor);
    case FaultSpec::Kind::kGaussian:
      return text + " sigma=" + report::format_general(f.sigma);
    case FaultSpec::Kind::kAlie:
      return f.z ? text + " z=" + report::format_general(*f.z) : text;
    case FaultSpec::Kind::kDropout:
      return f.stage == "update" ? text : text + " before " + f.stage;
    default:
      return text;
  }
}

std::string describe_strategy(const agg::StrategyConfig& strategy) {
  const nlohmann::json j = strategy.to_json();
  std::string params;
  for (const auto& [key, value] : j.items()) {
    if (key == "name") continue;
    const std::string shown = value.is_number_float() ? report::format_general(value.get<double>())
                              : value.is_string()     ? value.get<std::string>()
                                                      : value.dump();
    params += (params.empty() ? "" : ", ") + key + "=" + shown;
  }
  const std::string name = j.at("name").get<std::string>();
  return params.empty() ? name : name + "(" + params + ")";
}

namespace {

fs::path existing_file(util::ConfigReader& r, const std::string& key, const fs::path& base,
                       const std::string& hint) {
  std::string value;
  r.require(key, value);
  fs::path p = util::resolve_config_path(base, value);
  if (!fs::is_regular_file(p)) r.fail(key, "'" + p.string() + "' is not a file; " + hint);
  return p;
}

// The kind of a fault or attack and the parameters that kind takes; a parameter of another kind
// is refused (a `sigma` on a scale attack is a mistake, not something to ignore).
FaultSpec read_fault_behaviour(util::ConfigReader& f, bool byzantine_only) {
  using K = FaultSpec::Kind;
  FaultSpec spec;
  const std::vector<std::string> kinds = fault_kind_names(byzantine_only);
  if (!f.has("kind")) f.fail("kind", "is required: " + joined(kinds));
  std::string kind;
  f.get("kind", kind);
  if (byzantine_only && (kind == "dropout" || kind == "straggler" || kind == "nan"))
    f.fail("kind", "'" + kind + "' is a fault, not a Byzantine attack; faults go in the "
                   "`faults` list of experiment federation. Attacks: " + joined(kinds));
  f.get_choice("kind", kind, kinds);
  spec.kind = fault_kind_from_string(kind);
  auto only_for = [&](const char* key, std::initializer_list<K> owners) {
    if (!f.has(key)) return false;
    for (K k : owners)
      if (k == spec.kind) return true;
    f.fail(key, "does not apply to kind " + kind);
  };
  if (only_for("stage", {K::kDropout}))
    f.get_choice("stage", spec.stage, {"update", "shares", "masked", "unmask"});
  if (only_for("delay", {K::kStraggler})) {
    double delay = 0;
    f.get("delay", delay, 0.0, 86400.0);
    spec.delay = std::chrono::milliseconds(std::llround(delay * 1000));
  }
  if (spec.kind == K::kStraggler && spec.delay.count() == 0)
    f.fail("delay", "is required for a straggler (seconds it holds each Update back)");
  if (only_for("factor", {K::kScale, K::kSignFlip, K::kSampleLie}))
    f.get("factor", spec.factor, -1e6, 1e6);
  if ((spec.kind == K::kScale || spec.kind == K::kSampleLie) && !f.has("factor"))
    f.fail("factor", "is required for kind " + kind +
                         (spec.kind == K::kScale ? " (e.g. 100: the change boosted 100x)"
                                                 : " (e.g. 10: it claims 10x its images)"));
  if (spec.kind == K::kSampleLie && !(spec.factor > 0))
    f.fail("factor", "must be > 0 for sample_lie (the multiple of its images it claims)");
  if (only_for("sigma", {K::kGaussian})) f.get("sigma", spec.sigma, 1e-12, 1e6);
  if (spec.kind == K::kGaussian && !f.has("sigma"))
    f.fail("sigma", "is required for kind gaussian (standard deviation of the noise sent in "
                    "place of the change, per coordinate, e.g. 0.1)");
  if (only_for("z", {K::kAlie})) {
    double z = 0;
    f.get("z", z, 0.0, 100.0);
    spec.z = z;
  }
  return spec;
}

void read_faults(util::ConfigReader& root, SimConfig& c) {
  for (auto& f : root.list("faults")) {
    FaultSpec spec = read_fault_behaviour(f, false);
    f.require("site", spec.site);
    f.get("from_round", spec.from_round, std::int64_t{1}, std::int64_t{1} << 40);
    f.get("until_round", spec.until_round, std::int64_t{0}, std::int64_t{1} << 40);
    if (spec.until_round != 0 && spec.until_round < spec.from_round)
      f.fail("until_round", "is before from_round");
    if (spec.kind == FaultSpec::Kind::kLabelFlip && (spec.from_round != 1 || spec.until_round != 0))
      f.fail(spec.from_round != 1 ? "from_round" : "until_round",
             "does not apply to label_flip: the site's data is poisoned once, before its first "
             "round, and stays so");
    f.finish();
    c.faults.push_back(spec);
  }
}

void read_byzantine(util::ConfigReader& root, SimConfig& c) {
  auto b = root.section("byzantine");
  ByzantineSection& z = c.byzantine;
  for (auto& a : b.list("attacks")) {
    FaultSpec spec = read_fault_behaviour(a, true);
    a.finish();
    for (const auto& other : z.attacks)
      if (describe_fault(other) == describe_fault(spec))
        a.fail("kind", "'" + describe_fault(spec) + "' is listed twice");
    z.attacks.push_back(spec);
  }
  if (b.has("hostile")) {
    b.get("hostile", z.hostile);
    if (z.hostile.empty()) b.fail("hostile", "must list at least one count of hostile sites");
    for (std::size_t i = 0; i < z.hostile.size(); ++i) {
      if (z.hostile[i] < 1) b.fail("hostile", "every count must be >= 1");
      for (std::size_t j = 0; j < i; ++j)
        if (z.hostile[j] == z.hostile[i])
          b.fail("hostile", std::to_string(z.hostile[i]) + " is listed twice");
      // Known here for the partitions whose site count is set; the others are checked when the
      // population is built.
      if (c.partition.sites > 0 && z.hostile[i] >= c.partition.sites)
        b.fail("hostile", std::to_string(z.hostile[i]) + " hostile sites of " +
                              std::to_string(c.partition.sites) +
                              " leave no honest site; the count must be below partition.sites");
    }
  }
  for (auto& s : b.list("strategies")) {
    NamedStrategy ns;
    ns.config = agg::StrategyConfig::read(s);  // checks every key of the item
    ns.name = describe_strategy(ns.config);
    for (const auto& other : z.strategies)
      if (other.name == ns.name) s.fail("name", "'" + ns.name + "' is listed twice");
    z.strategies.push_back(ns);
  }
  b.finish();
  if (root.has("byzantine") && c.experiment != Experiment::kByzantine)
    root.fail("byzantine", "belongs to experiment byzantine (this one is " +
                               std::string(to_string(c.experiment)) + ")");
  if (c.experiment != Experiment::kByzantine) return;
  if (z.attacks.empty())
    b.fail("attacks", "experiment byzantine needs a list of attacks, e.g. [{kind: sign_flip}, "
                      "{kind: scale, factor: 100}]; kinds: " + joined(fault_kind_names(true)));
  if (z.strategies.empty())
    b.fail("strategies", "experiment byzantine needs a list of strategies, e.g. [{name: "
                         "fedavg}, {name: median}]");
}

}  // namespace

SimConfig parse_sim_config(const std::string& yaml, const fs::path& file) {
  auto root = util::ConfigReader::from_string(yaml, file.string());
  const fs::path base = file.parent_path();
  SimConfig c;
  c.file = file;
  root.require("name", c.name);
  if (c.name.empty()) root.fail("name", "must not be empty");
  std::string experiment = "federation";
  root.get_choice("experiment", experiment,
                  {"federation", "privacy-utility", "dp-sweep", "byzantine"});
  c.experiment = experiment == "federation"        ? Experiment::kFederation
                 : experiment == "privacy-utility" ? Experiment::kPrivacyUtility
                 : experiment == "dp-sweep"        ? Experiment::kDpSweep
                                                   : Experiment::kByzantine;
  root.get("seed", c.seed);
  std::string runner = "threads";
  root.get_choice("runner", runner, {"threads", "processes"});
  c.runner = runner == "threads" ? SiteRunner::kThreads : SiteRunner::kProcesses;
  root.get("threads", c.threads, 1, 1024);

  {
    auto data = root.section("data");
    c.profile_file = existing_file(data, "profile", base,
                                   "name a profile such as configs/tiny.yaml (synth and image)");
    c.profile = load_profile(c.profile_file);
    auto& s = c.profile.synth;
    data.get("ids", s.ids, 4, 100000);
    data.get("images_per_id", s.images_per_id, 4, 10000);
    data.get("cameras", s.cameras, 2, 999);
    data.get("municipalities", s.municipalities, 1, 499);
    data.get("distractors", s.distractors, 0, 1000000);
    data.get("junk", s.junk, 0, 1000000);
    s.seed = c.seed;
    data.get("seed", s.seed);
    data.finish();
    try {
      data::synth::validate(s);
    } catch (const Error& e) {
      throw Error(file.string() + ": data: " + e.what());
    }
  }
  {
    auto p = root.section("partition");
    std::string kind = "identity";
    p.get_choice("kind", kind, {"municipality", "camera", "identity", "dirichlet"});
    c.partition.kind = partition_kind_from_string(kind);
    p.get("sites", c.partition.sites, 0, 4096);
    const bool counted = c.partition.kind == PartitionKind::kIdentity ||
                         c.partition.kind == PartitionKind::kDirichlet;
    if (counted && c.partition.sites < 1)
      p.fail("sites", "is required (>= 1) for partition kind " + kind);
    if (!counted && c.partition.sites != 0)
      p.fail("sites", "follows from the data for partition kind " + kind + "; remove it");
    p.get("alpha", c.partition.alpha, 1e-6, 1e6);
    p.get("min_identities", c.partition.min_identities, 1, 100000);
    c.partition.seed = c.seed;
    p.get("seed", c.partition.seed);
    p.finish();
  }
  {
    auto f = root.section("federation");
    c.model_config = existing_file(f, "model", base,
                                   "name a training config such as configs/train/tiny.yaml");
    f.get("rounds", c.rounds, std::int64_t{1}, std::int64_t{1} << 20);
    f.get("local_epochs", c.local_epochs, 1, 10000);
    if (f.has("learning_rate")) {
      double lr = 0;
      f.get("learning_rate", lr, 1e-12, 10.0);
      c.learning_rate = lr;
    }
    f.get("per_round", c.per_round);
    f.get("min_updates", c.min_updates, std::int64_t{1}, std::int64_t{1} << 20);
    f.get("round_timeout", c.round_timeout_s, 0.1, 86400.0);
    f.get("site_timeout", c.site_timeout_s, 0.1, 86400.0);
    f.get("max_attempts", c.max_attempts, 0, 1000);
    auto strategy = f.section("strategy");
    c.strategy = agg::StrategyConfig::read(strategy);
    if (f.has("max_delta_norm")) {
      double bound = 0;
      f.get("max_delta_norm", bound, 1e-12, 1e30);
      if (f.has("validation"))
        f.fail("max_delta_norm", "is also set in federation.validation; keep one of the two");
      c.validation.norm_bound = agg::NormBound::kAbsolute;
      c.validation.max_delta_norm = bound;
    }
    auto validation = f.section("validation");
    c.validation = agg::ValidationLimits::read(validation, c.validation);
    auto secure = f.section("secure_aggregation");
    c.secure_aggregation = agg::SecureAggregationConfig::read(secure);
    if (c.secure_aggregation.enabled) {
      if (std::string why = agg::SecureAggregationConfig::strategy_problem(c.strategy.kind);
          !why.empty())
        secure.fail("enabled", why);
      if (c.experiment == Experiment::kByzantine)
        secure.fail("enabled", "the byzantine experiment compares robust strategies, which need "
                               "each site's update; secure aggregation hides them");
    }
    f.get("deidentify_test", c.deidentify_test);
    std::string protocol = reid::to_string(c.centroid_protocol);
    f.get_choice("centroid_protocol", protocol,
                 std::vector<std::string>(std::begin(reid::kCentroidProtocolNames),
                                          std::end(reid::kCentroidProtocolNames)));
    c.centroid_protocol = reid::parse_centroid_protocol(protocol);
    f.finish();
  }

  // Builds the method once now, so a wrong combination is reported before any training. PIS
  // may get its model later (trained by the simulator), so it is checked when it runs.
  auto check_method = [&](util::ConfigReader& r, const deid::MethodSpec& spec,
                          const std::string& prefix) {
    if (spec.method == "pis") return;
    try {
      deid::make_deidentifier(spec, deid::ParameterNaming{prefix, "-"});
    } catch (const Error& e) {
      throw Error(file.string() + ":" + std::to_string(r.line_of("method")) + ": " + e.what());
    }
  };
  if (root.has("deid")) {
    auto d = root.section("deid");
    c.deid = deid::read_method_spec(d, base);
    d.finish();
    check_method(d, c.deid, "deid.");
  }
  for (auto& m : root.list("methods")) {
    NamedMethod nm;
    m.require("name", nm.name);
    nm.spec = deid::read_method_spec(m, base);
    m.finish();
    check_method(m, nm.spec, m.full_key(""));
    for (const auto& other : c.methods)
      if (other.name == nm.name) m.fail("name", "'" + nm.name + "' is used twice");
    c.methods.push_back(nm);
  }
  {
    auto s = root.section("dp_sweep");
    s.get("presets", c.dp_presets);
    for (const auto& p : c.dp_presets)
      if (p != "A" && p != "B" && p != "C" && p != "D")
        s.fail("presets", "'" + p + "' is not a preset of the image-DP paper (A, B, C or D)");
    s.get("epsilons", c.dp_epsilons);
    for (double e : c.dp_epsilons)
      if (!(e > 0)) s.fail("epsilons", "every epsilon must be > 0");
    s.finish();
  }
  read_faults(root, c);
  read_byzantine(root, c);
  {
    auto a = root.section("attack");
    AttackSection& at = c.attack;
    at.enabled = root.has("attack");
    a.get("enabled", at.enabled);
    a.get_choice("model", at.model, {"lenet", "reid"});
    a.get_choice("method", at.method, {"idlg", "dlg"});
    a.get_choice("mode", at.mode, {"fedsgd", "fedavg"});
    a.get("images", at.images, 1, 1000);
    a.get("iterations", at.iterations, 1, 100000);
    // At least 11: the reconstruction's SSIM uses an 11x11 window.
    a.get("size", at.size, 11, 256);
    a.get("height", at.height, 11, 512);
    a.get("width", at.width, 11, 512);
    a.get("local_lr", at.local_lr, 1e-9, 10.0);
    a.get("local_steps", at.local_steps, 1, 1000);
    a.get_choice("secure_aggregation", at.secure_aggregation, {"off", "masked", "sum"});
    a.get("secure_sites", at.secure_sites, 2, 1000);
    a.finish();
  }
  {
    auto p = root.section("privacy");
    c.privacy.attacker_config = c.model_config;
    if (p.has("attacker_config"))
      c.privacy.attacker_config = existing_file(p, "attacker_config", base,
                                                "name a training config (configs/train/*.yaml)");
    p.get("attacker_epochs", c.privacy.attacker_epochs, 0, 100000);
    p.get("attribute_epochs", c.privacy.attribute_epochs, 1, 100000);
    p.finish();
  }
  {
    auto p = root.section("pis");
    if (p.has("model")) {
      std::string m;
      p.get("model", m);
      c.pis.model = util::resolve_config_path(base, m);
    }
    if (p.has("config"))
      c.pis.config = existing_file(p, "config", base, "name configs/pis/tiny.yaml or similar");
    p.get("public_ids", c.pis.public_ids, 0, 100000);
    p.finish();
  }
  root.finish();

  // Cross-checks: each experiment needs its own section.
  auto uses_pis = [](const deid::MethodSpec& s) { return s.method == "pis"; };
  bool pis = uses_pis(c.deid);
  switch (c.experiment) {
    case Experiment::kFederation:
    case Experiment::kByzantine:
      if (!c.methods.empty())
        throw Error(file.string() + ": `methods` belongs to experiment privacy-utility; a " +
                    std::string(to_string(c.experiment)) +
                    " experiment uses the `deid` section");
      break;
    case Experiment::kPrivacyUtility:
      if (c.methods.empty())
        throw Error(file.string() + ": experiment privacy-utility needs a `methods` list "
                    "(e.g. - {name: none, method: none})");
      for (const auto& m : c.methods) pis = pis || uses_pis(m.spec);
      break;
    case Experiment::kDpSweep:
      if (c.dp_epsilons.empty())
        throw Error(file.string() + ": experiment dp-sweep needs dp_sweep.epsilons (e.g. [10, "
                    "1000, 100000])");
      break;
  }
  if (pis && !c.pis.model && c.pis.config.empty())
    throw Error(file.string() + ": a PIS method needs pis.model (a `ppreid pis train` "
                "checkpoint) or pis.config (configs/pis/*.yaml, trained by the simulator on a "
                "public stand-in population)");
  if (c.runner == SiteRunner::kProcesses && !c.faults.empty())
    throw Error(file.string() + ": faults are injected into site threads; use runner: threads");
  if (c.runner == SiteRunner::kProcesses && c.experiment == Experiment::kByzantine)
    throw Error(file.string() + ": the byzantine experiment injects its attacks into site "
                "threads; use runner: threads");
  if (!c.faults.empty() && c.experiment != Experiment::kFederation)
    throw Error(file.string() + ": faults apply to experiment federation only" +
                (c.experiment == Experiment::kByzantine
                     ? std::string("; the byzantine experiment sets its own from "
                                   "byzantine.attacks")
                     : std::string()));
  return c;
}

namespace {

std::string path_text(const fs::path& p) { return "\"" + fs::absolute(p).string() + "\""; }

std::string number(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string indent_lines(const std::string& text, const std::string& first,
                         const std::string& rest) {
  std::string out;
  std::size_t start = 0;
  bool at_first = true;
  while (start < text.size()) {
    const std::size_t end = text.find('\n', start);
    out += (at_first ? first : rest) + text.substr(start, end - start) + "\n";
    at_first = false;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

// ", factor: 100" and the like: the parameters of the fault's kind, for the resolved config.
std::string fault_parameters(const FaultSpec& f) {
  using K = FaultSpec::Kind;
  std::string out;
  if (f.kind == K::kStraggler)
    out += ", delay: " + number(static_cast<double>(f.delay.count()) / 1000.0);
  if (f.kind == K::kScale || f.kind == K::kSignFlip || f.kind == K::kSampleLie)
    out += ", factor: " + number(f.factor);
  if (f.kind == K::kGaussian) out += ", sigma: " + number(f.sigma);
  if (f.kind == K::kAlie && f.z) out += ", z: " + number(*f.z);
  if (f.kind == K::kDropout && f.stage != "update") out += ", stage: " + f.stage;
  return out;
}

}  // namespace

std::string format_sim_config(const SimConfig& c) {
  std::ostringstream y;
  const auto& s = c.profile.synth;
  y << "# Resolved by `ppreid simulate` from " << fs::absolute(c.file).string() << "\n"
    << "name: " << c.name << "\n"
    << "experiment: " << to_string(c.experiment) << "\n"
    << "seed: " << c.seed << "\n"
    << "runner: " << (c.runner == SiteRunner::kThreads ? "threads" : "processes") << "\n"
    << "threads: " << c.threads << "\n"
    << "data:\n  profile: " << path_text(c.profile_file) << "\n"
    << "  ids: " << s.ids << "\n  images_per_id: " << s.images_per_id << "\n"
    << "  cameras: " << s.cameras << "\n  municipalities: " << s.municipalities << "\n"
    << "  distractors: " << s.distractors << "\n  junk: " << s.junk << "\n"
    << "  seed: " << s.seed << "\n"
    << "partition:\n  kind: " << to_string(c.partition.kind) << "\n";
  if (c.partition.sites > 0) y << "  sites: " << c.partition.sites << "\n";
  y << "  alpha: " << number(c.partition.alpha) << "\n"
    << "  min_identities: " << c.partition.min_identities << "\n"
    << "  seed: " << c.partition.seed << "\n"
    << "federation:\n  model: " << path_text(c.model_config) << "\n"
    << "  rounds: " << c.rounds << "\n  local_epochs: " << c.local_epochs << "\n";
  if (c.learning_rate) y << "  learning_rate: " << number(*c.learning_rate) << "\n";
  y << "  per_round: \"" << c.per_round << "\"\n"
    << "  min_updates: " << c.min_updates << "\n"
    << "  round_timeout: " << number(c.round_timeout_s) << "\n"
    << "  site_timeout: " << number(c.site_timeout_s) << "\n"
    << "  max_attempts: " << c.max_attempts << "\n"
    << "  strategy: " << c.strategy.to_json().dump() << "\n";
  y << "  validation:\n" << c.validation.to_yaml("    ");
  if (c.secure_aggregation.enabled)
    y << "  secure_aggregation:\n" << c.secure_aggregation.to_yaml("    ");
  y << "  deidentify_test: " << (c.deidentify_test ? "true" : "false") << "\n"
    << "  centroid_protocol: " << reid::to_string(c.centroid_protocol) << "\n";
  if (c.experiment == Experiment::kFederation)
    y << "deid:\n" << indent_lines(deid::format_method_spec(c.deid), "  ", "  ");
  if (!c.methods.empty()) {
    y << "methods:\n";
    for (const auto& m : c.methods)
      y << "  - name: \"" << m.name << "\"\n"
        << indent_lines(deid::format_method_spec(m.spec), "    ", "    ");
  }
  if (c.experiment == Experiment::kDpSweep) {
    y << "dp_sweep:\n  presets: [";
    for (std::size_t i = 0; i < c.dp_presets.size(); ++i) y << (i ? ", " : "") << c.dp_presets[i];
    y << "]\n  epsilons: [";
    for (std::size_t i = 0; i < c.dp_epsilons.size(); ++i)
      y << (i ? ", " : "") << number(c.dp_epsilons[i]);
    y << "]\n";
  }
  if (!c.faults.empty()) {
    y << "faults:\n";
    for (const auto& f : c.faults) {
      y << "  - {kind: " << to_string(f.kind) << ", site: " << f.site
        << ", from_round: " << f.from_round << ", until_round: " << f.until_round;
      y << fault_parameters(f) << "}\n";
    }
  }
  if (c.experiment == Experiment::kByzantine) {
    const ByzantineSection& b = c.byzantine;
    y << "byzantine:\n  attacks:\n";
    for (const auto& a : b.attacks)
      y << "    - {kind: " << to_string(a.kind) << fault_parameters(a) << "}\n";
    y << "  hostile: [";
    for (std::size_t i = 0; i < b.hostile.size(); ++i) y << (i ? ", " : "") << b.hostile[i];
    y << "]\n  strategies:\n";
    for (const auto& s : b.strategies) y << "    - " << s.config.to_json().dump() << "\n";
  }
  const auto& a = c.attack;
  y << "attack:\n  enabled: " << (a.enabled ? "true" : "false") << "\n"
    << "  model: " << a.model << "\n  method: " << a.method << "\n  mode: " << a.mode << "\n"
    << "  images: " << a.images << "\n  iterations: " << a.iterations << "\n"
    << "  size: " << a.size << "\n  height: " << a.height << "\n  width: " << a.width << "\n"
    << "  local_lr: " << number(a.local_lr) << "\n  local_steps: " << a.local_steps << "\n"
    << "  secure_aggregation: " << a.secure_aggregation << "\n  secure_sites: " << a.secure_sites
    << "\n";
  y << "privacy:\n  attacker_config: " << path_text(c.privacy.attacker_config) << "\n"
    << "  attacker_epochs: " << c.privacy.attacker_epochs << "\n"
    << "  attribute_epochs: " << c.privacy.attribute_epochs << "\n";
  if (c.pis.model || !c.pis.config.empty()) {
    y << "pis:\n";
    if (c.pis.model) y << "  model: " << path_text(*c.pis.model) << "\n";
    if (!c.pis.config.empty()) y << "  config: " << path_text(c.pis.config) << "\n";
    y << "  public_ids: " << c.pis.public_ids << "\n";
  }
  return y.str();
}

SimConfig load_sim_config(const fs::path& file) {
  if (!fs::is_regular_file(file))
    throw Error("simulation config '" + file.string() +
                "' does not exist; start from configs/sim/tiny.yaml");
  return parse_sim_config(util::read_file(file), file);
}

}  // namespace ppreid::sim
