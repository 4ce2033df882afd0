#include "simulations/byzantine.h"

#include <algorithm>
#include <map>
#include <set>

#include "core/util/error.h"
#include "simulations/site_faults.h"

namespace ppreid::sim {
namespace {

// One group of sites (hostile or honest) over all rounds of a run.
struct SiteTally {
  int accepted = 0, rejected = 0, silent = 0;
  std::optional<int> clipped, capped;  // only when the aggregator reports them
  std::map<std::string, int> reasons;  // rejection reason (its first words) -> count
  nlohmann::json to_json() const {
    nlohmann::json j = {{"accepted", accepted}, {"rejected", rejected}, {"silent", silent},
                        {"reasons", reasons}};
    j["clipped"] = clipped ? nlohmann::json(*clipped) : nlohmann::json();
    j["capped"] = capped ? nlohmann::json(*capped) : nlohmann::json();
    return j;
  }
};

// "norm_too_large" out of "norm_too_large: ||delta|| = 3e5 > bound 1e3": the kind, not the
// numbers, so the reasons of a run's rounds add up.
std::string reason_kind(const std::string& reason) {
  const std::size_t cut = reason.find_first_of(":(");
  std::string kind = reason.substr(0, cut);
  while (!kind.empty() && kind.back() == ' ') kind.pop_back();
  return kind.size() > 40 ? kind.substr(0, 40) : kind;
}

nlohmann::json tally_run(const FederationResult& run, const std::set<std::string>& hostile) {
  SiteTally tallies[2];  // 0 honest, 1 hostile
  auto of = [&](const std::string& site) -> SiteTally& { return tallies[hostile.count(site)]; };
  auto count_in = [&](const std::optional<std::vector<std::string>>& list,
                      std::optional<int> SiteTally::*field) {
    if (!list) return;
    for (auto& t : tallies)
      if (!(t.*field)) t.*field = 0;
    for (const auto& site : *list) ++*(of(site).*field);
  };
  for (const auto& r : run.rounds) {
    for (const auto& site : r.accepted) ++of(site).accepted;
    for (const auto& [site, reason] : r.rejected) {
      ++of(site).rejected;
      ++of(site).reasons[reason_kind(reason)];
    }
    for (const auto& site : r.silent) ++of(site).silent;
    count_in(r.clipped, &SiteTally::clipped);
    count_in(r.capped, &SiteTally::capped);
  }
  return {{"rounds", run.rounds.size()},
          {"hostile", tallies[1].to_json()},
          {"honest", tallies[0].to_json()}};
}

std::string describe_tally(const std::string& group, const nlohmann::json& t) {
  const int accepted = t.at("accepted"), rejected = t.at("rejected"), silent = t.at("silent");
  std::string text = group + " " + std::to_string(accepted) + "/" +
                     std::to_string(accepted + rejected + silent) + " accepted";
  for (const char* key : {"clipped", "capped"})
    if (t.at(key).is_number() && t.at(key).get<int>() > 0)
      text += ", " + std::to_string(t.at(key).get<int>()) + " " + key;
  if (rejected > 0) {
    std::string reasons;
    for (const auto& [reason, n] : t.at("reasons").items())
      reasons += (reasons.empty() ? "" : ", ") + reason;
    text += ", " + std::to_string(rejected) + " rejected (" + reasons + ")";
  }
  if (silent > 0) text += ", " + std::to_string(silent) + " silent";
  return text;
}

}  // namespace

std::vector<ByzantineRun> plan_byzantine_runs(const SimConfig& c,
                                              const std::vector<std::string>& site_ids) {
  const ByzantineSection& b = c.byzantine;
  const int n = static_cast<int>(site_ids.size());
  for (int k : b.hostile) {
    if (k >= n)
      throw Error(c.file.string() + ": byzantine.hostile: " + std::to_string(k) +
                  " hostile sites of the partition's " + std::to_string(n) +
                  " leave no honest site; use counts below " + std::to_string(n));
    for (const auto& attack : b.attacks)
      if (attack.kind == FaultSpec::Kind::kAlie && !attack.z) {
        try {
          alie_z(n, k);
        } catch (const Error& e) {
          throw Error(c.file.string() + ": byzantine: " + e.what());
        }
      }
  }
  std::vector<ByzantineRun> runs;
  for (const auto& s : b.strategies) {
    ByzantineRun run{"no attack | " + s.name, "none", 0, s.name, c};
    run.config.strategy = s.config;
    run.config.faults.clear();
    runs.push_back(std::move(run));
  }
  for (int k : b.hostile)
    for (const auto& attack : b.attacks)
      for (const auto& s : b.strategies) {
        const std::string what = describe_fault(attack);
        ByzantineRun run{what + " | " + std::to_string(k) + " hostile | " + s.name, what, k,
                         s.name, c};
        run.config.strategy = s.config;
        run.config.faults.clear();
        for (int i = n - k; i < n; ++i) {
          FaultSpec f = attack;
          f.site = site_ids[static_cast<std::size_t>(i)];
          f.from_round = 1;
          f.until_round = 0;
          run.config.faults.push_back(f);
        }
        runs.push_back(std::move(run));
      }
  return runs;
}

nlohmann::json byzantine_summary(const std::vector<ByzantineRun>& plan,
                                 const std::vector<const FederationResult*>& results,
                                 const std::vector<std::string>& errors) {
  nlohmann::json hostile_sites = nlohmann::json::object();
  nlohmann::json rows = nlohmann::json::array();
  std::vector<std::string> strategies, attacks;
  for (std::size_t i = 0; i < plan.size(); ++i) {
    const ByzantineRun& p = plan[i];
    std::set<std::string> hostile;
    for (const auto& f : p.config.faults) hostile.insert(f.site);
    if (p.hostile > 0)
      hostile_sites[std::to_string(p.hostile)] = std::vector<std::string>(hostile.begin(), hostile.end());
    if (std::find(strategies.begin(), strategies.end(), p.strategy) == strategies.end())
      strategies.push_back(p.strategy);
    if (p.hostile > 0 && std::find(attacks.begin(), attacks.end(), p.attack) == attacks.end())
      attacks.push_back(p.attack);
    nlohmann::json row = {{"run", p.name}, {"attack", p.attack}, {"hostile", p.hostile},
                          {"strategy", p.strategy}};
    if (const FederationResult* r = results[i]) {
      const RoundSummary& f = r->final_round();
      row["round"] = f.round;
      row["mAP"] = f.map;
      row["rank1"] = f.rank1;
      row["centroid_mAP"] = f.centroid_map;
      row["centroid_rank1"] = f.centroid_rank1;
      row["centroid_protocol"] = f.centroid_protocol;
      row["aggregator"] = tally_run(*r, hostile);
    } else {
      row["error"] = errors[i];
    }
    rows.push_back(row);
  }
  return {{"hostile_sites", hostile_sites},
          {"strategies", strategies},
          {"attacks", attacks},
          {"rows", rows}};
}

std::string describe_aggregator_record(const nlohmann::json& aggregator) {
  const nlohmann::json& hostile = aggregator.at("hostile");
  const int hostile_seen = hostile.at("accepted").get<int>() + hostile.at("rejected").get<int>() +
                           hostile.at("silent").get<int>();
  const std::string honest = describe_tally("honest", aggregator.at("honest"));
  return hostile_seen == 0 ? honest : describe_tally("hostile", hostile) + "; " + honest;
}

}  // namespace ppreid::sim
