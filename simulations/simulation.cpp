#include "simulations/simulation.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>

#include "client/site_config.h"
#include "core/data/dataset.h"
#include "core/data/synth/generator.h"
#include "core/deid/method_config.h"
#include "core/deid/pis/one_time_key.h"
#include "core/deid/pis/shift_plan.h"
#include "core/deid/pis/pis_config.h"
#include "core/deid/pis/pis_trainer.h"
#include "core/privacy/identity_attack.h"
#include "core/privacy/pu_score.h"
#include "core/reid/checkpoint.h"
#include "core/reid/features.h"
#include "core/reid/train_config.h"
#include "core/reid/trainer.h"
#include "core/util/atomic_file.h"
#include "core/util/error.h"
#include "core/tensor/torch_threads.h"
#include "simulations/byzantine.h"
#include "simulations/population.h"
#include "simulations/privacy_utility.h"
#include "simulations/replay.h"
#include "simulations/report/table.h"
#include "simulations/sim_report.h"

namespace ppreid::sim {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
namespace {

std::string slug(const std::string& name) {
  std::string out;
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u)) out += static_cast<char>(std::tolower(u));
    else if (c == '.' || c == '+' || c == '-') out += c;
    else if (!out.empty() && out.back() != '_') out += '_';
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out.empty() ? "run" : out;
}

// The federations an experiment consists of, in table order (byzantine: one per planned run,
// all with the `deid` method).
std::vector<NamedMethod> planned_runs(const SimConfig& c, const std::vector<ByzantineRun>& byzantine) {
  std::vector<NamedMethod> runs;
  switch (c.experiment) {
    case Experiment::kFederation:
      runs.push_back({deid::describe_method(c.deid), c.deid});
      break;
    case Experiment::kPrivacyUtility:
      runs = c.methods;
      break;
    case Experiment::kDpSweep:
      for (const auto& preset : c.dp_presets)
        for (double eps : c.dp_epsilons) {
          deid::MethodSpec s;
          s.method = "dp";
          s.preset = preset;
          s.epsilon = eps;
          runs.push_back({preset + " eps=" + report::format_general(eps), s});
        }
      break;
    case Experiment::kByzantine:
      for (const auto& run : byzantine) runs.push_back({run.name, c.deid});
      break;
  }
  return runs;
}

// Removes wall-clock fields so a summary compares equal across reruns.
void drop_timings(nlohmann::json& j) {
  if (j.is_object()) {
    for (const char* key : {"seconds", "images_per_second", "strip"}) j.erase(key);
    for (auto& [k, v] : j.items()) drop_timings(v);
  } else if (j.is_array()) {
    for (auto& v : j) drop_timings(v);
  }
}

}  // namespace

namespace {

// The PIS checkpoint every PIS site uses: pis.model, or trained here once on a public stand-in
// population (another seed: other people), as a site would download a published model.
fs::path ensure_pis_model(const SimConfig& c, const fs::path& out) {
  if (c.pis.model) return *c.pis.model;
  const fs::path run = out / "pis";
  if (fs::exists(run / "summary.json")) return run / "checkpoint";
  data::synth::SynthOptions o = c.profile.synth;
  o.seed = c.seed + 7919;
  if (c.pis.public_ids > 0) o.ids = c.pis.public_ids;
  o.threads = c.threads;
  const fs::path public_data = out / "data" / "public";
  if (!fs::exists(public_data)) data::synth::generate(o, public_data);
  spdlog::info("training PIS on the public stand-in population {}", public_data.string());
  deid::pis::PisConfig pc = deid::pis::load_pis_config(c.pis.config);
  pc.profile.runtime.threads = c.threads;
  deid::pis::PisTrainRunOptions ro;
  ro.out = run;
  ro.resume = fs::exists(run / "checkpoint");
  deid::pis::train_pis(pc, data::load_dataset(public_data), ro);
  return run / "checkpoint";
}


// The replay's victims: site-1's first train images of distinct identities, raw and as the site
// released them (PIS renames them to the new label its one-time key records).
std::vector<ReplayTarget> attack_victims(const SimConfig& c, const Population& pop,
                                         const NamedMethod& method, const SimKeys& keys,
                                         const fs::path& run_dir) {
  const SiteData& site = pop.sites.front();
  data::LoadOptions train_only;
  train_only.require_query_gallery = false;
  const data::Dataset raw = data::load_dataset(site.raw, train_only);
  std::optional<deid::pis::ShiftPlan> plan;
  if (method.spec.method == "pis") {
    const fs::path key = method.spec.one_time_key
                             ? *method.spec.one_time_key
                             : run_dir / "secrets" / (site.site_id + ".otk");
    const fs::path key_file =
        method.spec.key_file ? *method.spec.key_file : keys.dir / "pis.aeskey";
    plan = deid::pis::read_one_time_key(key, key_file);
  }
  const fs::path store = site_store(run_dir, site.site_id);
  std::vector<ReplayTarget> targets;
  std::set<int> seen;
  for (const auto& r : raw.train) {
    if (static_cast<int>(targets.size()) >= c.attack.images) break;
    if (r.pid <= 0 || !seen.insert(r.pid).second) continue;
    const std::string released =
        plan ? deid::pis::shifted_path(r.path, raw.layout, plan->for_image(r).new_pid) : r.path;
    if (!fs::exists(store / released))
      throw Error("attack: site " + site.site_id + " released no '" + released + "' in " +
                  store.string() + "; the run directory is incomplete, rerun without --resume");
    targets.push_back({fs::path(r.path).stem().string(), raw.absolute(r), store / released,
                       r.label});
  }
  if (targets.empty())
    throw Error("attack: site " + site.site_id + " has no identity to attack");
  return targets;
}

ReplayOptions replay_options(const SimConfig& c, const fs::path& strip_dir) {
  ReplayOptions o;
  o.model.model = c.attack.model;
  if (c.attack.model == "lenet") {
    o.model.height = o.model.width = c.attack.size;
  } else {
    o.model.arch = "resnet_tiny";
    o.model.height = c.attack.height;
    o.model.width = c.attack.width;
  }
  o.model.classes = 10;
  o.method = c.attack.method == "dlg" ? attacks::InversionMethod::kDlg
                                      : attacks::InversionMethod::kIdlg;
  o.mode = parse_replay_mode(c.attack.mode);
  o.iterations = c.attack.iterations;
  o.local_lr = c.attack.local_lr;
  o.local_steps = c.attack.local_steps;
  o.secure = parse_replay_secure(c.attack.secure_aggregation);
  o.secure_sites = c.attack.secure_sites;
  o.seed = c.seed + 8191;
  o.strip_dir = strip_dir;
  return o;
}

nlohmann::json replay_on_run(const SimConfig& c, const Population& pop, const SimKeys& keys,
                             const NamedMethod& method, const fs::path& run_dir,
                             const fs::path& strip_dir, std::vector<fs::path>& strips) {
  const std::string& site = pop.sites.front().site_id;
  const ReplayKeys rk{keys.aggregator_key, keys.aggregator_pub, keys.site_key(site),
                      keys.allow_list, site};
  const ReplayOptions o = replay_options(c, strip_dir);
  // A resumed simulation reuses a replay of the same settings on the same run.
  const fs::path cache = strip_dir / "replay.json";
  const nlohmann::json key = {{"run", method.name},
                              {"images", c.attack.images},
                              {"options", ReplaySummary{}.to_json(o)},
                              {"local_lr", o.local_lr},
                              {"local_steps", o.local_steps}};
  if (fs::exists(cache)) {
    const nlohmann::json saved = nlohmann::json::parse(util::read_file(cache));
    if (saved.at("key") == key) {
      for (const auto& a : saved.at("summary").at("attacks"))
        if (a.contains("strip")) strips.push_back(strip_dir / a.at("strip").get<std::string>());
      return saved.at("summary");
    }
  }
  spdlog::info("replaying {} on what {} shares in run '{}' ({} image(s))",
               c.attack.method, site, method.name, c.attack.images);
  const ReplaySummary r =
      replay_gradient_attacks(attack_victims(c, pop, method, keys, run_dir), rk, o);
  for (const auto& a : r.attacks)
    if (!a.strip.empty()) strips.push_back(a.strip);
  nlohmann::json j = r.to_json(o);
  j["run"] = method.name;
  util::write_file_atomic(cache, nlohmann::json{{"key", key}, {"summary", j}}.dump(1) + "\n");
  return j;
}
}  // namespace

SimulationResult run_simulation(const SimConfig& config, const fs::path& out,
                                const SimulationOptions& options) {
  const auto started = Clock::now();
  SimConfig c = config;
  const std::string resolved = format_sim_config(c);
  if (fs::exists(out) && !fs::is_empty(out)) {
    if (!options.resume)
      throw Error("output directory '" + out.string() + "' is not empty; add --resume to finish "
                  "an interrupted simulation of the same config, or choose a new --out");
    if (!fs::exists(out / "config.yaml") || util::read_file(out / "config.yaml") != resolved)
      throw Error("--resume: '" + out.string() + "' holds a simulation of another config (its "
                  "config.yaml differs); choose a new --out");
  }
  fs::create_directories(out);
  util::write_file_atomic(out / "config.yaml", resolved);
  tensor::configure_torch_threads(c.threads);

  const Population pop = prepare_population(c, out);
  const SimKeys keys = prepare_keys(out, pop.sites);
  spdlog::info("simulation '{}' ({}): {} sites, held-out test split of {} identities ({} queries, "
               "{} gallery images); {} torch thread(s) per site",
               c.name, to_string(c.experiment), pop.sites.size(), pop.test_identities,
               pop.test_queries, pop.test_gallery, c.site_threads(static_cast<int>(pop.sites.size())));

  std::vector<ByzantineRun> byzantine;
  if (c.experiment == Experiment::kByzantine) {
    std::vector<std::string> site_ids;
    for (const auto& s : pop.sites) site_ids.push_back(s.site_id);
    byzantine = plan_byzantine_runs(c, site_ids);
  }
  std::vector<NamedMethod> runs = planned_runs(c, byzantine);
  bool any_pis = false;
  for (auto& r : runs) any_pis = any_pis || r.spec.method == "pis";
  if (any_pis) {
    const fs::path model = ensure_pis_model(c, out);
    for (auto& r : runs)
      if (r.spec.method == "pis" && !r.spec.model) r.spec.model = model;
  }

  SimulationResult result;
  FederationRunOptions fo;
  fo.site_binary = options.site_binary;
  fo.stop = options.stop;
  std::vector<fs::path> run_dirs;
  // byzantine: a run that fails (a strategy that cannot aggregate what the attack left, say) is
  // a result, not the end of the experiment; it is tabled with its error and retried on --resume.
  std::vector<std::string> run_errors(runs.size());
  std::vector<std::optional<std::size_t>> result_of(runs.size());
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const NamedMethod& run = runs[i];
    const fs::path dir = out / "runs" / slug(run.name);
    spdlog::info("run '{}' ({}/{}): {} rounds, every site de-identifies with {}", run.name, i + 1,
                 runs.size(), c.rounds, deid::describe_method(run.spec));
    try {
      result.runs.push_back(
          run_federation(byzantine.empty() ? c : byzantine[i].config, pop, keys, run, dir, fo));
    } catch (const Error& e) {
      if (byzantine.empty() || (options.stop && options.stop->load())) throw;
      spdlog::error("run '{}' failed: {}", run.name, e.what());
      run_errors[i] = e.what();
      continue;
    }
    result_of[i] = result.runs.size() - 1;
    run_dirs.push_back(dir);
    const auto& f = result.runs.back().final_round();
    spdlog::info("run '{}' done: global mAP {:.4f}, rank-1 {:.4f} (centroid {:.4f} / {:.4f}, {})",
                 run.name, f.map, f.rank1, f.centroid_map, f.centroid_rank1, f.centroid_protocol);
  }

  nlohmann::json summary = {{"name", c.name},
                            {"experiment", std::string(to_string(c.experiment))},
                            {"seed", c.seed},
                            {"rounds", c.rounds},
                            {"local_epochs", c.local_epochs},
                            {"strategy", c.strategy.to_json()},
                            {"site_threads", c.site_threads(static_cast<int>(pop.sites.size()))}};
  nlohmann::json sites = nlohmann::json::array();
  for (const auto& s : pop.sites)
    sites.push_back({{"site", s.site_id}, {"images", s.images}, {"identities", s.identities},
                     {"cameras", s.cameras}});
  summary["population"] = {{"partition", std::string(to_string(c.partition.kind))},
                           {"sites", sites},
                           {"test", {{"identities", pop.test_identities},
                                     {"queries", pop.test_queries},
                                     {"gallery", pop.test_gallery}}}};
  nlohmann::json runs_json = nlohmann::json::array();
  for (const auto& r : result.runs) runs_json.push_back(r.to_json());
  summary["runs"] = runs_json;

  if (c.experiment == Experiment::kDpSweep) {
    nlohmann::json rows = nlohmann::json::array();
    for (std::size_t i = 0; i < result.runs.size(); ++i) {
      const auto& fr = result.runs[i];
      const auto& f = fr.final_round();
      rows.push_back({{"preset", *runs[i].spec.preset},
                      {"epsilon", *runs[i].spec.epsilon},
                      {"mAP", f.map},
                      {"rank1", f.rank1},
                      {"centroid_mAP", f.centroid_map},
                      {"centroid_rank1", f.centroid_rank1},
                      {"centroid_protocol", f.centroid_protocol},
                      {"ssim", fr.deid_ssim},
                      {"psnr", fr.deid_psnr}});
    }
    summary["dp_sweep"] = rows;
  }

  if (c.experiment == Experiment::kByzantine) {
    std::vector<const FederationResult*> by_plan;
    for (const auto& index : result_of)
      by_plan.push_back(index ? &result.runs[*index] : nullptr);
    summary["byzantine"] = byzantine_summary(byzantine, by_plan, run_errors);
  }

  if (c.experiment == Experiment::kPrivacyUtility) {
    const auto t0 = Clock::now();
    summary["privacy_utility"] = privacy_utility_rows(c, pop, keys, result.runs, runs, run_dirs, out);
    spdlog::info("privacy attacks done in {:.0f} s",
                 std::chrono::duration<double>(Clock::now() - t0).count());
  }

  std::vector<fs::path> strips;
  nlohmann::json attack_timing = nullptr;
  if (c.attack.enabled) {
    const auto t0 = Clock::now();
    if (c.experiment == Experiment::kPrivacyUtility) {
      // The same attack against every method's share: one row per method.
      nlohmann::json by_method = nlohmann::json::array();
      for (std::size_t i = 0; i < runs.size(); ++i)
        by_method.push_back(replay_on_run(c, pop, keys, runs[i], run_dirs[i],
                                          out / "attack" / slug(runs[i].name), strips));
      summary["attack"] = by_method.front();
      summary["attack_by_method"] = by_method;
    } else {
      summary["attack"] = replay_on_run(c, pop, keys, runs.front(), run_dirs.front(),
                                        out / "attack", strips);
    }
    attack_timing = std::chrono::duration<double>(Clock::now() - t0).count();
    drop_timings(summary);
  }
  // metrics.jsonl: every completed round of every run, one JSON object per line.
  std::string lines;
  for (const auto& r : result.runs)
    for (const auto& round : r.rounds) {
      nlohmann::json j = round.to_json();
      j["run"] = r.name;
      lines += j.dump() + "\n";
    }
  util::write_file_atomic(out / "metrics.jsonl", lines);
  util::write_file_atomic(out / "summary.json", summary.dump(2) + "\n");

  result.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  nlohmann::json timing = {{"wall_seconds", result.seconds},
                           {"hardware_threads", std::thread::hardware_concurrency()},
                           {"runs", nlohmann::json::object()}};
  for (const auto& r : result.runs) timing["runs"][r.name] = r.seconds;
  if (!attack_timing.is_null()) timing["attack"] = attack_timing;
  util::write_file_atomic(out / "timing.json", timing.dump(2) + "\n");

  ReportInputs ri{c, pop, result.runs, run_dirs, summary, out, strips, result.seconds};
  result.summary_table = write_report(ri);
  result.report = out / "report.html";
  result.summary = std::move(summary);
  return result;
}

}  // namespace ppreid::sim
