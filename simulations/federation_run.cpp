#include "simulations/federation_run.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <exception>
#include <mutex>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>

#include "aggregator/aggregator.h"
#include "aggregator/aggregator_config.h"
#include "client/site.h"
#include "client/site_config.h"
#include "core/deid/deid_runner.h"
#include "core/deid/method_config.h"
#include "core/deid/pis/one_time_key.h"
#include "core/util/atomic_file.h"
#include "core/util/error.h"
#include "simulations/site_faults.h"

extern char** environ;

namespace ppreid::sim {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

nlohmann::json RoundSummary::to_json() const {
  nlohmann::json rejected_json = nlohmann::json::array();
  for (const auto& [site, reason] : rejected)
    rejected_json.push_back({{"site", site}, {"reason", reason}});
  nlohmann::json j = {{"round", round},       {"attempts", attempts},
                      {"mAP", map},           {"rank1", rank1},
                      {"centroid_mAP", centroid_map}, {"centroid_rank1", centroid_rank1},
                      {"centroid_protocol", centroid_protocol},
                      {"accepted", accepted}, {"rejected", rejected_json},
                      {"silent", silent}};
  j["train_loss"] = train_loss ? nlohmann::json(*train_loss) : nlohmann::json();
  if (clipped) j["clipped"] = *clipped;
  if (capped) j["capped"] = *capped;
  return j;
}

nlohmann::json FaultOutcome::to_json() const {
  nlohmann::json rounds = nlohmann::json::object();
  for (const auto& [round, what] : per_round) rounds[std::to_string(round)] = what;
  return {{"site", fault.site},
          {"kind", std::string(to_string(fault.kind))},
          {"from_round", fault.from_round},
          {"until_round", fault.until_round},
          {"delay_seconds", static_cast<double>(fault.delay.count()) / 1000.0},
          {"factor", fault.factor},
          {"sigma", fault.sigma},
          {"z", fault.z ? nlohmann::json(*fault.z) : nlohmann::json()},
          {"aggregator", rounds}};
}

nlohmann::json FederationResult::to_json() const {
  nlohmann::json rounds_json = nlohmann::json::array();
  for (const auto& r : rounds) rounds_json.push_back(r.to_json());
  nlohmann::json faults_json = nlohmann::json::array();
  for (const auto& f : faults) faults_json.push_back(f.to_json());
  nlohmann::json j = {{"name", name},
                      {"method", method},
                      {"rounds", rounds_json},
                      {"faults", faults_json},
                      {"deid_ssim", deid_ssim},
                      {"deid_psnr", deid_psnr}};
  if (!rounds.empty()) {
    const auto& f = rounds.back();
    j["final"] = {{"round", f.round},
                  {"mAP", f.map},
                  {"rank1", f.rank1},
                  {"centroid_mAP", f.centroid_map},
                  {"centroid_rank1", f.centroid_rank1},
                  {"centroid_protocol", f.centroid_protocol}};
  }
  return j;
}

FederationResult FederationResult::from_json(const nlohmann::json& j) {
  FederationResult r;
  r.name = j.at("name");
  r.method = j.at("method");
  r.deid_ssim = j.at("deid_ssim");
  r.deid_psnr = j.at("deid_psnr");
  r.seconds = j.value("seconds", 0.0);
  for (const auto& x : j.at("rounds")) {
    RoundSummary s;
    s.round = x.at("round");
    s.attempts = x.at("attempts");
    s.map = x.at("mAP");
    s.rank1 = x.at("rank1");
    s.centroid_map = x.at("centroid_mAP");
    s.centroid_rank1 = x.at("centroid_rank1");
    s.centroid_protocol = x.at("centroid_protocol");
    if (!x.at("train_loss").is_null()) s.train_loss = x.at("train_loss").get<double>();
    s.accepted = x.at("accepted").get<std::vector<std::string>>();
    for (const auto& rej : x.at("rejected")) s.rejected.emplace_back(rej.at("site"), rej.at("reason"));
    s.silent = x.at("silent").get<std::vector<std::string>>();
    if (x.contains("clipped")) s.clipped = x.at("clipped").get<std::vector<std::string>>();
    if (x.contains("capped")) s.capped = x.at("capped").get<std::vector<std::string>>();
    r.rounds.push_back(std::move(s));
  }
  for (const auto& x : j.at("faults")) {
    FaultOutcome f;
    f.fault.site = x.at("site");
    f.fault.kind = fault_kind_from_string(x.at("kind").get<std::string>());
    f.fault.from_round = x.at("from_round");
    f.fault.until_round = x.at("until_round");
    f.fault.delay = std::chrono::milliseconds(
        std::llround(x.at("delay_seconds").get<double>() * 1000.0));
    f.fault.factor = x.at("factor");
    f.fault.sigma = x.value("sigma", 0.0);
    if (x.contains("z") && !x.at("z").is_null()) f.fault.z = x.at("z").get<double>();
    for (const auto& [round, what] : x.at("aggregator").items())
      f.per_round.emplace_back(std::stoll(round), what.get<std::string>());
    std::sort(f.per_round.begin(), f.per_round.end());
    r.faults.push_back(std::move(f));
  }
  return r;
}

deid::MethodSpec seeded_method(const deid::MethodSpec& spec, std::uint64_t seed) {
  deid::MethodSpec s = spec;
  if ((s.method == "dp" || s.method == "pis") && !s.seed) s.seed = seed;
  return s;
}

namespace {

std::string quoted(const fs::path& p) {
  std::string out = "\"";
  for (char c : fs::absolute(p).string()) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string indent_block(const std::string& text, const std::string& indent) {
  std::istringstream in(text);
  std::string line, out;
  while (std::getline(in, line)) out += indent + line + "\n";
  return out;
}

// The settings a cached result.json must match to be reused.
nlohmann::json run_settings(const SimConfig& c, const NamedMethod& m) {
  nlohmann::json faults_json = nlohmann::json::array();
  for (const auto& f : c.faults) faults_json.push_back(FaultOutcome{f, {}}.to_json());
  return {{"method", deid::format_method_spec(m.spec)},
          {"name", m.name},
          {"seed", c.seed},
          {"model", fs::absolute(c.model_config).string()},
          {"rounds", c.rounds},
          {"local_epochs", c.local_epochs},
          {"learning_rate", c.learning_rate ? *c.learning_rate : -1.0},
          {"per_round", c.per_round},
          {"min_updates", c.min_updates},
          {"strategy", c.strategy.to_json()},
          {"validation", c.validation.to_yaml("")},
          {"secure_aggregation",
           c.secure_aggregation.enabled ? c.secure_aggregation.to_yaml("") : std::string("off")},
          {"deidentify_test", c.deidentify_test},
          {"centroid_protocol", reid::to_string(c.centroid_protocol)},
          {"faults", faults_json}};
}

std::string aggregator_yaml(const SimConfig& c, const SimKeys& keys, const fs::path& run_dir,
                            const fs::path& test, std::size_t sites, int threads) {
  std::ostringstream y;
  y << "# Generated by `ppreid simulate` from " << c.file.filename().string() << "\n"
    << "federation_id: sim-" << c.name << "\n"
    << "listen: tcp://127.0.0.1:0         # an ephemeral port; the sites are told the real one\n"
    << "security:\n  mode: curve\n"
    << "  secret_key: " << quoted(keys.aggregator_key) << "\n"
    << "  allow_list: " << quoted(keys.allow_list) << "\n"
    << "state_dir: " << quoted(run_dir / "aggregator") << "\n"
    << "model: " << quoted(c.model_config) << "\n"
    << "seed: " << c.seed << "\n"
    << "threads: " << threads << "\n"
    << "rounds: " << c.rounds << "\n"
    << "sites:\n  min_sites: " << sites << "\n"
    << "  per_round: \"" << c.per_round << "\"\n"
    << "  min_updates: " << c.min_updates << "\n"
    << "  round_timeout: " << c.round_timeout_s << "\n"
    << "  site_timeout: " << c.site_timeout_s << "\n"
    << "  max_attempts: " << c.max_attempts << "\n"
    << "task:\n  local_epochs: " << c.local_epochs << "\n"
    << "  seed: " << c.seed << "\n";
  if (c.learning_rate) y << "  learning_rate: " << *c.learning_rate << "\n";
  y << "strategy: " << c.strategy.to_json().dump() << "\n";
  y << "validation:\n" << c.validation.to_yaml("  ");
  if (c.secure_aggregation.enabled)
    y << "secure_aggregation:\n" << c.secure_aggregation.to_yaml("  ");
  y << "evaluation:\n  sites: false\n  dataset: " << quoted(test) << "\n"
    << "  centroid_protocol: " << reid::to_string(c.centroid_protocol) << "\n";
  return y.str();
}

std::string site_yaml(const SimConfig& c, const SimKeys& keys, const SiteData& site,
                      const deid::MethodSpec& method, const std::string& endpoint,
                      const fs::path& site_dir, int threads) {
  std::ostringstream y;
  y << "# Generated by `ppreid simulate` from " << c.file.filename().string() << "\n"
    << "site_id: " << site.site_id << "\n"
    << "federation_id: sim-" << c.name << "\n"
    << "aggregator:\n  endpoint: " << endpoint << "\n  security: curve\n"
    << "  public_key: " << quoted(keys.aggregator_pub) << "\n"
    << "  handshake_timeout: 5\n"
    << "secret_key: " << quoted(keys.site_key(site.site_id)) << "\n"
    << "data:\n  raw: " << quoted(site.raw) << "\n"
    << "  store: " << quoted(site_dir / "store") << "\n"
    << "  state: " << quoted(site_dir / "state") << "\n"
    << "deid:\n" << indent_block(deid::format_method_spec(method), "  ")
    << (method.seed ? "  reproducible_for_experiments: true\n" : "")
    << "  threads: " << threads << "\n"
    << "training:\n  config: " << quoted(c.model_config) << "\n"
    << "  threads: " << threads << "\n"
    << "  evaluate: false           # the aggregator evaluates on the held-out test split\n"
    << "runtime:\n  heartbeat_interval: 1\n  reconnect_initial: 0.2\n  reconnect_max: 2\n"
    << "  connect_give_up: 120\n";
  return y.str();
}

// A `ppreid site` child process with its output in `log`.
pid_t spawn_site(const fs::path& binary, const fs::path& config, const fs::path& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  const std::string bin = binary.string(), cfg = config.string();
  std::vector<char*> argv = {const_cast<char*>(bin.c_str()), const_cast<char*>("site"),
                             const_cast<char*>("--config"), const_cast<char*>(cfg.c_str()),
                             nullptr};
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, bin.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0)
    throw Error("cannot start the site process '" + bin + "': " + std::strerror(rc) +
                "; is the ppreid binary built?");
  return pid;
}

// From the site's private quality report (client/site_prepare.cpp), which a simulation may read:
// it plays every site's operator.
void mean_quality(const fs::path& state, double& ssim, double& psnr) {
  const fs::path report = state / "deid_quality.json";
  if (!fs::exists(report)) return;
  const auto j = nlohmann::json::parse(util::read_file(report));
  if (j.value("mean_ssim", nlohmann::json()).is_number()) ssim = j["mean_ssim"].get<double>();
  if (j.value("mean_psnr_db", nlohmann::json()).is_number()) psnr = j["mean_psnr_db"].get<double>();
}

// The sites a metrics field names: a list of site ids, a list of {"site": ...} records or an
// object keyed by site (the aggregator's clipped/capped records; their detail stays in
// metrics.jsonl).
std::vector<std::string> sites_named(const nlohmann::json& field) {
  std::vector<std::string> sites;
  if (field.is_object()) {
    for (const auto& [site, detail] : field.items()) sites.push_back(site);
  } else if (field.is_array()) {
    for (const auto& x : field) {
      if (x.is_string()) sites.push_back(x.get<std::string>());
      else if (x.is_object() && x.contains("site")) sites.push_back(x.at("site").get<std::string>());
    }
  }
  return sites;
}

std::vector<RoundSummary> read_rounds(const fs::path& metrics) {
  std::vector<RoundSummary> rounds;
  std::map<std::int64_t, int> attempts;
  std::istringstream in(util::read_file(metrics));
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line);
    const std::int64_t r = j.at("round");
    ++attempts[r];
    if (j.at("outcome") != "completed") continue;
    RoundSummary s;
    s.round = r;
    s.attempts = attempts[r];
    for (const auto& [site, n] : j.at("accepted").items()) s.accepted.push_back(site);
    for (const auto& rej : j.at("rejected")) s.rejected.emplace_back(rej.at("site"), rej.at("reason"));
    s.silent = j.at("silent").get<std::vector<std::string>>();
    if (j.contains("train_loss")) s.train_loss = j.at("train_loss").get<double>();
    if (j.contains("clipped")) s.clipped = sites_named(j.at("clipped"));
    if (j.contains("capped")) s.capped = sites_named(j.at("capped"));
    if (j.contains("eval") && j["eval"].contains("dataset")) {
      const auto& e = j["eval"]["dataset"];
      s.map = e.at("instance").at("mAP");
      s.rank1 = e.at("instance").at("rank1");
      if (e.contains("centroid")) {
        s.centroid_map = e.at("centroid").at("mAP");
        s.centroid_rank1 = e.at("centroid").at("rank1");
        s.centroid_protocol = e.at("centroid").at("protocol");
      }
    }
    rounds.push_back(std::move(s));
  }
  return rounds;
}

FaultOutcome trace_fault(const FaultSpec& fault, const std::vector<RoundSummary>& rounds) {
  FaultOutcome out{fault, {}};
  for (const auto& r : rounds) {
    std::string what = "not asked";
    if (std::find(r.accepted.begin(), r.accepted.end(), fault.site) != r.accepted.end()) {
      what = "accepted";
      std::string notes;
      for (const auto& [list, note] : {std::pair{&r.clipped, "clipped"}, {&r.capped, "capped"}})
        if (*list && std::find((*list)->begin(), (*list)->end(), fault.site) != (*list)->end())
          notes += (notes.empty() ? "" : ", ") + std::string(note);
      if (!notes.empty()) what += " (" + notes + ")";
    }
    // A refused site may resend a valid update in the same round: accepted then wins.
    if (what == "not asked")
      for (const auto& [site, reason] : r.rejected)
        if (site == fault.site) what = "rejected: " + reason;
    if (std::find(r.silent.begin(), r.silent.end(), fault.site) != r.silent.end())
      what = "silent";
    out.per_round.emplace_back(r.round, what);
  }
  return out;
}

// The meeting point of the ALIE colluders and the honest sites, when any site runs alie: z as
// the attack sets it, else from the paper (n: the federation's sites, f: the colluders). A
// colluder waits for the honest updates at most half a round's timeout, so its own still
// arrives in time.
std::unique_ptr<AlieBoard> alie_board(const SimConfig& c, const Population& pop) {
  std::set<std::string> colluders;
  std::optional<double> z;
  for (const auto& f : c.faults)
    if (f.kind == FaultSpec::Kind::kAlie) {
      colluders.insert(f.site);
      if (f.z && !z) z = f.z;
    }
  if (colluders.empty()) return nullptr;
  std::vector<std::string> honest;
  for (const auto& site : pop.sites)
    if (!colluders.count(site.site_id)) honest.push_back(site.site_id);
  const int n = static_cast<int>(pop.sites.size());
  const int f = n - static_cast<int>(honest.size());
  const bool set_by_hand = z.has_value();
  if (!z) {
    try {
      z = alie_z(n, f);
    } catch (const Error& e) {
      throw Error("simulation '" + c.name + "': " + e.what());
    }
  }
  spdlog::info("alie: {} colluder(s) among {} sites, z = {:.5f} ({})", f, n, *z,
               set_by_hand ? "set by the attack" : "Baruch et al.'s, from n and f");
  const auto wait = std::chrono::milliseconds(std::llround(c.round_timeout_s * 500.0));
  return std::make_unique<AlieBoard>(std::move(honest), *z, wait);
}

}  // namespace

FederationResult run_federation(const SimConfig& c, const Population& pop, const SimKeys& keys,
                                const NamedMethod& method, const fs::path& run_dir,
                                const FederationRunOptions& options) {
  const nlohmann::json settings = run_settings(c, method);
  const fs::path result_file = run_dir / "result.json";
  if (fs::exists(result_file)) {
    const auto saved = nlohmann::json::parse(util::read_file(result_file));
    if (saved.value("settings", nlohmann::json()) == settings) {
      spdlog::info("{}: complete in {}; reusing its result", method.name, run_dir.string());
      return FederationResult::from_json(saved.at("result"));
    }
  }
  if (c.runner == SiteRunner::kProcesses && options.site_binary.empty())
    throw Error("runner processes needs the ppreid binary (FederationRunOptions::site_binary)");
  // Anything else in the directory is an interrupted or outdated run: start it over.
  fs::remove_all(run_dir);
  fs::create_directories(run_dir / "sites");
  const auto started = Clock::now();
  const std::size_t n = pop.sites.size();
  const int site_threads = c.site_threads(static_cast<int>(n));

  // The held-out split, de-identified like the sites' data (cameras in deployment would be).
  fs::path test = pop.test;
  if (c.deidentify_test && method.spec.method != "none") {
    test = run_dir / "test";
    auto deidentifier = deid::make_deidentifier(seeded_method(method.spec, c.seed * 1000 + 999));
    deid::DeidRunOptions run;
    run.in = pop.test;
    run.out = test;
    run.threads = c.threads;
    deid::deidentify_dataset(*deidentifier, run);
  }

  const fs::path agg_yaml = run_dir / "aggregator.yaml";
  util::write_file_atomic(agg_yaml, aggregator_yaml(c, keys, run_dir, test, n, c.threads));
  agg::Aggregator aggregator(agg::load_aggregator_config(agg_yaml));
  const std::string endpoint = aggregator.endpoint();

  std::vector<fs::path> site_configs;
  for (std::size_t i = 0; i < n; ++i) {
    const SiteData& site = pop.sites[i];
    const fs::path file = run_dir / "sites" / (site.site_id + ".yaml");
    deid::MethodSpec spec = seeded_method(method.spec, c.seed * 1000 + i + 1);
    if (spec.method == "pis" && !spec.one_time_key) {
      // The identity mapping, encrypted and away from the data, so the privacy evaluation can
      // count partner hits (an evaluator's privilege, not the attacker's).
      fs::create_directories(run_dir / "secrets");
      spec.one_time_key = run_dir / "secrets" / (site.site_id + ".otk");
      spec.key_file = keys.dir / "pis.aeskey";
      if (!fs::exists(*spec.key_file)) deid::pis::create_key_file(*spec.key_file);
    }
    util::write_file_atomic(file, site_yaml(c, keys, site, spec, endpoint,
                                            run_dir / "sites" / site.site_id, site_threads));
    site_configs.push_back(file);
  }

  std::atomic<bool> halt{false};
  std::mutex failure_mu;
  std::string failure;
  auto fail = [&](const std::string& what) {
    std::lock_guard lock(failure_mu);
    if (failure.empty()) failure = what;
    halt = true;
  };
  std::vector<std::thread> threads;
  std::vector<pid_t> children;
  std::unique_ptr<AlieBoard> board = alie_board(c, pop);
  if (c.runner == SiteRunner::kThreads) {
    for (std::size_t i = 0; i < n; ++i) {
      std::vector<FaultSpec> mine;
      for (const auto& f : c.faults)
        if (f.site == pop.sites[i].site_id) mine.push_back(f);
      const FaultContext context{c.seed, i, pop.sites[i].site_id, board.get()};
      threads.emplace_back([&, i, mine, context] {
        try {
          client::Site site(client::load_site_config(site_configs[i]), fault_hooks(mine, context));
          site.run(halt);
        } catch (const std::exception& e) {
          fail(pop.sites[i].site_id + ": " + e.what());
        }
        // Returned or failed: ALIE colluders must not wait for this site's updates any more.
        if (board) board->leave(pop.sites[i].site_id);
      });
    }
  } else {
    fs::create_directories(run_dir / "logs");
    for (std::size_t i = 0; i < n; ++i)
      children.push_back(spawn_site(options.site_binary, site_configs[i],
                                    run_dir / "logs" / (pop.sites[i].site_id + ".log")));
  }

  // The aggregator runs here; an external stop or a failed site halts it.
  std::atomic<bool> agg_stop{false};
  std::thread watcher([&] {
    while (!agg_stop.load()) {
      if (halt.load() || (options.stop && options.stop->load())) {
        halt = true;
        agg_stop = true;
        break;
      }
      for (std::size_t i = 0; i < children.size(); ++i) {
        int status = 0;
        if (children[i] > 0 && waitpid(children[i], &status, WNOHANG) == children[i]) {
          const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
          children[i] = -1;
          if (!ok)
            fail(pop.sites[i].site_id + ": the site process failed; see " +
                 (run_dir / "logs" / (pop.sites[i].site_id + ".log")).string());
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  std::exception_ptr agg_error;
  agg::RunOutcome outcome = agg::RunOutcome::kStopped;
  try {
    outcome = aggregator.run(agg_stop);
  } catch (...) {
    agg_error = std::current_exception();
  }
  agg_stop = true;
  watcher.join();
  // Sites were told Bye "finished" (or the aggregator stopped); make sure nobody waits on.
  halt = halt.load() || outcome != agg::RunOutcome::kFinished || agg_error != nullptr;
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  for (pid_t& pid : children) {
    if (pid <= 0) continue;
    int status = 0;
    while (waitpid(pid, &status, WNOHANG) == 0) {
      if (Clock::now() > deadline || halt.load()) kill(pid, SIGTERM);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  // A site thread may still wait for an aggregator that finished before its Hello (a vanished
  // site returned long ago); the aggregator has said Bye to all it knew, so stop the rest.
  if (!halt.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  halt = true;
  if (board) board->close();
  for (auto& t : threads) t.join();
  if (agg_error) std::rethrow_exception(agg_error);
  if (!failure.empty() && outcome != agg::RunOutcome::kFinished)
    throw Error("simulation '" + c.name + "', run '" + method.name + "': " + failure);
  if (outcome != agg::RunOutcome::kFinished)
    throw Error("simulation '" + c.name + "', run '" + method.name + "' was stopped");

  FederationResult result;
  result.name = method.name;
  result.method = deid::describe_method(method.spec);
  result.rounds = read_rounds(run_dir / "aggregator" / "metrics.jsonl");
  for (const auto& f : c.faults) result.faults.push_back(trace_fault(f, result.rounds));
  double ssim_sum = 0, psnr_sum = 0;
  for (const auto& site : pop.sites) {
    double s = 0, p = 0;
    mean_quality(run_dir / "sites" / site.site_id / "state", s, p);
    ssim_sum += s;
    psnr_sum += p;
  }
  result.deid_ssim = ssim_sum / static_cast<double>(n);
  result.deid_psnr = psnr_sum / static_cast<double>(n);
  result.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  nlohmann::json saved = {{"settings", settings}, {"result", result.to_json()}};
  saved["result"]["seconds"] = result.seconds;
  util::write_file_atomic(result_file, saved.dump(2) + "\n");
  return result;
}

}  // namespace ppreid::sim
