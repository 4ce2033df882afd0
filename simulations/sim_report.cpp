#include "simulations/sim_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include <opencv2/imgcodecs.hpp>

#include "core/data/dataset.h"
#include "core/util/atomic_file.h"
#include "core/util/error.h"
#include "core/util/image.h"
#include "simulations/byzantine.h"
#include "simulations/report/html_report.h"
#include "simulations/report/image_grid.h"
#include "simulations/report/plot.h"
#include "simulations/report/table.h"

namespace ppreid::sim {
namespace fs = std::filesystem;
using report::Figure;
using report::ReportSection;
using report::Table;
using report::format_fixed;
using report::format_general;
namespace {

Table population_table(const nlohmann::json& population) {
  Table t;
  t.caption = "Sites (partition: " + population.at("partition").get<std::string>() + ")";
  t.header = {"site", "train images", "identities", "cameras"};
  for (const auto& s : population.at("sites"))
    t.rows.push_back({s.at("site"), std::to_string(s.at("images").get<int>()),
                      std::to_string(s.at("identities").get<int>()),
                      std::to_string(s.at("cameras").get<int>())});
  const auto& test = population.at("test");
  t.rows.push_back({"held-out test", std::to_string(test.at("gallery").get<int>()) + " gallery, " +
                                         std::to_string(test.at("queries").get<int>()) + " queries",
                    std::to_string(test.at("identities").get<int>()), ""});
  return t;
}

Table runs_table(const std::vector<FederationResult>& runs) {
  Table t;
  t.caption = "Global model on the held-out test split after the last round";
  if (!runs.empty() && !runs.front().final_round().centroid_protocol.empty())
    t.caption +=
        " (centroid retrieval: " + runs.front().final_round().centroid_protocol + " protocol)";
  t.header = {"run", "method", "rounds", "mAP", "Rank-1", "centroid mAP", "centroid Rank-1",
              "SSIM of de-identified"};
  for (const auto& r : runs) {
    const auto& f = r.final_round();
    t.rows.push_back({r.name, r.method, std::to_string(f.round), format_fixed(f.map, 3),
                      format_fixed(f.rank1, 3), format_fixed(f.centroid_map, 3),
                      format_fixed(f.centroid_rank1, 3), format_fixed(r.deid_ssim, 3)});
  }
  return t;
}

Table rounds_table(const std::vector<FederationResult>& runs) {
  Table t;
  t.caption = "mAP per round (instance retrieval; accepted/rejected/silent updates)";
  t.header = {"run", "round", "mAP", "Rank-1", "centroid mAP", "train loss", "accepted",
              "rejected", "silent"};
  for (const auto& r : runs)
    for (const auto& round : r.rounds) {
      std::string rejected;
      for (const auto& [site, reason] : round.rejected)
        rejected += (rejected.empty() ? "" : ", ") + site + " (" + reason + ")";
      std::string accepted, silent;
      for (const auto& s : round.accepted) accepted += (accepted.empty() ? "" : ", ") + s;
      for (const auto& s : round.silent) silent += (silent.empty() ? "" : ", ") + s;
      t.rows.push_back({r.name, std::to_string(round.round), format_fixed(round.map, 3),
                        format_fixed(round.rank1, 3), format_fixed(round.centroid_map, 3),
                        round.train_loss ? format_fixed(*round.train_loss, 3) : "n/a", accepted,
                        rejected, silent});
    }
  return t;
}

Table faults_table(const std::vector<FederationResult>& runs) {
  Table t;
  t.caption = "Injected faults and what the aggregator did";
  t.header = {"site", "fault", "rounds", "aggregator, per round"};
  for (const auto& r : runs)
    for (const auto& f : r.faults) {
      const std::string detail = describe_fault(f.fault);
      std::string what;
      for (const auto& [round, outcome] : f.per_round)
        what += (what.empty() ? "" : "; ") + ("r" + std::to_string(round) + ": " + outcome);
      t.rows.push_back({f.fault.site, detail,
                        std::to_string(f.fault.from_round) + ".." +
                            (f.fault.until_round ? std::to_string(f.fault.until_round) : "end"),
                        what});
    }
  return t;
}

Table privacy_utility_table(const nlohmann::json& rows) {
  Table t;
  t.caption = "Privacy and utility (T_u: federated ReID on de-identified data; T_p: identity "
              "attack, lower = more private; attribute attack mean F1; PU-score, I_u = I_p = 1)";
  t.header = {"method", "T_u mAP", "T_u Rank-1", "T_p mAP", "T_p Rank-1", "attribute F1",
              "PU (mAP)", "PU (Rank-1)"};
  for (const auto& r : rows) {
    const auto& attr = r.at("attribute_attack");
    t.rows.push_back({r.at("method"), format_fixed(r.at("T_u").at("mAP"), 3),
                      format_fixed(r.at("T_u").at("rank1"), 3),
                      format_fixed(r.at("T_p").at("mAP"), 3),
                      format_fixed(r.at("T_p").at("rank1"), 3),
                      attr.is_null() ? "n/a" : format_fixed(attr.at("mean_f1"), 3),
                      format_fixed(r.at("pu_score").at("mAP"), 3),
                      format_fixed(r.at("pu_score").at("rank1"), 3)});
  }
  return t;
}

Table dp_sweep_table(const nlohmann::json& rows) {
  Table t;
  t.caption = "Image DP: retrieval of the federated model vs epsilon (instance and centroid";
  t.caption +=
      rows.empty() || !rows.front().contains("centroid_protocol")
          ? std::string(")")
          : ", " + rows.front().at("centroid_protocol").get<std::string>() + " centroid protocol)";
  t.header = {"preset", "epsilon", "mAP", "Rank-1", "centroid mAP", "centroid Rank-1", "SSIM"};
  for (const auto& r : rows)
    t.rows.push_back({r.at("preset"), format_general(r.at("epsilon")), format_fixed(r.at("mAP"), 3),
                      format_fixed(r.at("rank1"), 3), format_fixed(r.at("centroid_mAP"), 3),
                      format_fixed(r.at("centroid_rank1"), 3), format_fixed(r.at("ssim"), 3)});
  return t;
}

Table attack_table(const nlohmann::json& attack) {
  Table t;
  t.caption = attack.at("method").get<std::string>() + " replay on " +
              attack.at("model").get<std::string>() + " (" + attack.at("mode").get<std::string>() +
              " share of " + attack.at("run").get<std::string>() +
              "): reconstruction vs the raw and the de-identified image";
  t.header = {"image", "label correct", "MSE raw", "PSNR raw", "SSIM raw", "MSE de-id",
              "PSNR de-id", "SSIM de-id", "iterations"};
  for (const auto& a : attack.at("attacks"))
    t.rows.push_back({a.at("name"), a.at("label_correct").get<bool>() ? "yes" : "no",
                      format_general(a.at("mse_raw")), format_fixed(a.at("psnr_raw"), 1),
                      format_fixed(a.at("ssim_raw"), 3), format_general(a.at("mse_deid")),
                      format_fixed(a.at("psnr_deid"), 1), format_fixed(a.at("ssim_deid"), 3),
                      std::to_string(a.at("iterations").get<int>())});
  return t;
}

// One row per method: what the same attack recovers from each method's shared update.
Table attack_by_method_table(const nlohmann::json& rows) {
  Table t;
  t.caption = "The same replay against every method (means over the attacked images; success: "
              "share of reconstructions within MSE 1e-3 of the raw image, and of the "
              "de-identified image the site trained on)";
  t.header = {"method", "label accuracy", "MSE raw", "SSIM raw", "MSE de-id", "SSIM de-id",
              "success raw", "success de-id"};
  for (const auto& r : rows)
    t.rows.push_back({r.at("run"), format_fixed(r.at("label_accuracy"), 2),
                      format_general(r.at("mean_mse_raw")), format_fixed(r.at("mean_ssim_raw"), 3),
                      format_general(r.at("mean_mse_deid")), format_fixed(r.at("mean_ssim_deid"), 3),
                      format_fixed(r.at("success_raw").at("1e-03"), 2),
                      format_fixed(r.at("success_deid").at("1e-03"), 2)});
  return t;
}

// The byzantine experiment, one table per hostile count: attacks down, strategies across, each
// cell the final round's centroid / instance mAP; the first row is the run without attack.
std::vector<Table> byzantine_tables(const nlohmann::json& b, std::size_t sites) {
  const auto& rows = b.at("rows");
  const auto strategies = b.at("strategies").get<std::vector<std::string>>();
  std::string protocol;
  for (const auto& r : rows)
    if (r.contains("centroid_protocol")) protocol = r.at("centroid_protocol");
  auto cell = [&](const std::string& attack, int hostile, const std::string& strategy) {
    for (const auto& r : rows)
      if (r.at("attack") == attack && r.at("hostile") == hostile && r.at("strategy") == strategy)
        return r.contains("error") ? std::string("failed")
                                   : format_fixed(r.at("centroid_mAP"), 3) + " / " +
                                         format_fixed(r.at("mAP"), 3);
    return std::string("-");
  };
  std::vector<Table> tables;
  for (const auto& [count, hostile_sites] : b.at("hostile_sites").items()) {
    const int k = std::stoi(count);
    std::string names;
    for (const auto& site : hostile_sites) names += (names.empty() ? "" : ", ") + site.get<std::string>();
    Table t;
    t.caption = "Final mAP with " + count + " of " + std::to_string(sites) + " sites hostile (" +
                names + "), each cell centroid" +
                (protocol.empty() ? std::string() : " (" + protocol + " protocol)") +
                " / instance retrieval; first row: the same strategy without attack";
    t.header = {"attack"};
    for (const auto& s : strategies) t.header.push_back(s);
    std::vector<std::string> baseline = {"no attack"};
    for (const auto& s : strategies) baseline.push_back(cell("none", 0, s));
    t.rows.push_back(baseline);
    for (const auto& attack : b.at("attacks")) {
      std::vector<std::string> row = {attack.get<std::string>()};
      for (const auto& s : strategies) row.push_back(cell(attack, k, s));
      t.rows.push_back(row);
    }
    tables.push_back(t);
  }
  return tables;
}

// Every byzantine run on one line, with rank-1 and what the aggregator did with the updates.
Table byzantine_runs_table(const nlohmann::json& b) {
  Table t;
  t.caption = "Every run: the final round on the held-out test split, and what the aggregator "
              "did with the hostile and the honest sites' updates over all rounds";
  t.header = {"attack", "hostile", "strategy", "mAP", "Rank-1", "centroid mAP", "centroid Rank-1",
              "aggregator"};
  using report::Align;
  t.align = {Align::kLeft,  Align::kRight, Align::kLeft,  Align::kRight,
             Align::kRight, Align::kRight, Align::kRight, Align::kLeft};
  for (const auto& r : b.at("rows")) {
    std::vector<std::string> row = {r.at("attack"), std::to_string(r.at("hostile").get<int>()),
                                    r.at("strategy")};
    if (r.contains("error")) {
      for (int i = 0; i < 4; ++i) row.push_back("n/a");
      row.push_back("failed: " + r.at("error").get<std::string>());
    } else {
      for (const char* key : {"mAP", "rank1", "centroid_mAP", "centroid_rank1"})
        row.push_back(format_fixed(r.at(key), 3));
      row.push_back(describe_aggregator_record(r.at("aggregator")));
    }
    t.rows.push_back(row);
  }
  return t;
}

fs::path plot_rounds(const ReportInputs& in) {
  std::vector<report::Series> series;
  for (const auto& r : in.runs) {
    report::Series s;
    s.name = r.name;
    for (const auto& round : r.rounds) {
      s.x.push_back(static_cast<double>(round.round));
      s.y.push_back(round.map);
    }
    series.push_back(s);
  }
  report::PlotOptions o;
  o.title = "Global model mAP per round (held-out test split)";
  o.x_label = "round";
  o.y_label = "mAP";
  o.y_min = 0;
  const fs::path file = in.out / "plots" / "map_per_round.png";
  report::write_png(file, report::render_plot(series, o));
  return file;
}

fs::path plot_dp_sweep(const ReportInputs& in, const nlohmann::json& rows) {
  std::map<std::string, report::Series> instance, centroid;
  for (const auto& r : rows) {
    const std::string p = r.at("preset");
    instance[p].name = p + " instance";
    centroid[p].name = p + " centroid";
    instance[p].x.push_back(r.at("epsilon"));
    instance[p].y.push_back(r.at("mAP"));
    centroid[p].x.push_back(r.at("epsilon"));
    centroid[p].y.push_back(r.at("centroid_mAP"));
  }
  std::vector<report::Series> series;
  for (auto& [p, s] : centroid) series.push_back(s);
  for (auto& [p, s] : instance) series.push_back(s);
  report::PlotOptions o;
  o.title = "mAP vs epsilon (image DP presets, centroid vs instance retrieval)";
  o.x_label = "epsilon";
  o.y_label = "mAP";
  o.log_x = true;
  o.y_min = 0;
  const fs::path file = in.out / "plots" / "dp_sweep_map.png";
  report::write_png(file, report::render_plot(series, o));
  return file;
}

std::vector<fs::path> plot_privacy_utility(const ReportInputs& in, const nlohmann::json& rows) {
  report::Series points;
  points.name = "methods";
  std::vector<report::Series> sweeps;
  for (const auto& r : rows) {
    points.x.push_back(r.at("T_p").at("mAP"));
    points.y.push_back(r.at("T_u").at("mAP"));
    points.labels.push_back(r.at("method"));
    report::Series s;
    s.name = r.at("method");
    for (const auto& p : r.at("pu_sweep_mAP")) {
      s.x.push_back(p.at("I_p"));
      s.y.push_back(p.at("pu_score"));
    }
    sweeps.push_back(s);
  }
  report::PlotOptions o;
  o.title = "Privacy-utility trade-off (up-left is better)";
  o.x_label = "T_p mAP (identity attack)";
  o.y_label = "T_u mAP (federated ReID)";
  o.style = report::PlotStyle::kPoints;
  o.y_min = 0;
  const fs::path tradeoff = in.out / "plots" / "privacy_utility.png";
  report::write_png(tradeoff, report::render_plot({points}, o));
  report::PlotOptions so;
  so.title = "PU-score vs I_p (I_u = 2 - I_p)";
  so.x_label = "I_p";
  so.y_label = "PU-score (mAP)";
  so.y_min = 0;
  const fs::path sweep = in.out / "plots" / "pu_sweep.png";
  report::write_png(sweep, report::render_plot(sweeps, so));
  return {tradeoff, sweep};
}

// Raw crops of site-1 (first row) and what each run's method made of them.
fs::path deid_grid(const ReportInputs& in) {
  const SiteData& site = in.population.sites.front();
  data::LoadOptions train_only;
  train_only.require_query_gallery = false;
  const data::Dataset raw = data::load_dataset(site.raw, train_only);
  // One image of each of the first identities, so the grid shows different people.
  std::vector<const data::ImageRecord*> picks;
  for (const auto& r : raw.train) {
    if (picks.size() >= 6) break;
    if (picks.empty() || picks.back()->pid != r.pid) picks.push_back(&r);
  }
  std::vector<std::vector<report::GridCell>> rows;
  report::GridOptions o;
  o.title = site.site_id + ": raw crops and what each method releases";
  std::vector<report::GridCell> first;
  for (const auto* r : picks) first.push_back({util::decode_image(raw.absolute(*r)), ""});
  rows.push_back(first);
  o.row_labels.push_back("raw");
  // The byzantine experiment's runs all use the one `deid` method: one row says it.
  const std::size_t shown = in.summary.contains("byzantine") ? std::min<std::size_t>(1, in.runs.size())
                                                            : in.runs.size();
  for (std::size_t i = 0; i < shown; ++i) {
    const fs::path store = in.run_dirs[i] / "sites" / site.site_id / "store";
    data::Dataset deid;
    try {
      deid = data::load_dataset(store, train_only);
    } catch (const Error&) {
      continue;
    }
    std::vector<report::GridCell> row;
    for (std::size_t k = 0; k < picks.size(); ++k) {
      // Methods that keep file names pair by name; PIS renames, so pair by position.
      fs::path file = store / picks[k]->path;
      if (!fs::exists(file) && k < deid.train.size()) file = deid.absolute(deid.train[k]);
      row.push_back({fs::exists(file) ? util::decode_image(file) : cv::Mat(), ""});
    }
    rows.push_back(row);
    o.row_labels.push_back(in.runs[i].name);
  }
  const fs::path file = in.out / "grids" / "deidentified.png";
  report::write_png(file, report::render_grid(rows, o));
  return file;
}

}  // namespace

std::string write_report(const ReportInputs& in) {
  const nlohmann::json& s = in.summary;
  std::vector<ReportSection> sections;

  ReportSection setup;
  setup.title = "Setup";
  std::string strategy = "strategy " + s.at("strategy").at("name").get<std::string>();
  if (s.contains("byzantine")) {
    strategy = "strategies";
    for (const auto& name : s.at("byzantine").at("strategies"))
      strategy += std::string(strategy == "strategies" ? " " : ", ") + name.get<std::string>();
  }
  setup.paragraphs.push_back(
      "Experiment " + s.at("experiment").get<std::string>() + ", seed " +
      std::to_string(s.at("seed").get<std::uint64_t>()) + ": " +
      std::to_string(in.population.sites.size()) + " sites, " +
      std::to_string(s.at("rounds").get<int>()) + " rounds of " +
      std::to_string(s.at("local_epochs").get<int>()) + " local epoch(s), " + strategy + ", " +
      std::to_string(s.at("site_threads").get<int>()) +
      " LibTorch thread(s) per site. Every site ran the real site runtime and the aggregator the "
      "real daemon, over CURVE-encrypted ZeroMQ on loopback with keys generated for this run.");
  setup.tables.push_back(population_table(s.at("population")));
  sections.push_back(setup);

  std::string main_table;
  if (s.contains("byzantine")) {
    // Dozens of federations: the attack x strategy tables and one line per run; the rounds of
    // each run are in metrics.jsonl.
    ReportSection byz;
    byz.title = "Hostile sites";
    byz.paragraphs.push_back(
        "The hostile sites are the last ones of the partition, hostile from round 1 to the end. "
        "sign_flip: global - factor x its change; scale: global + factor x its change; gaussian: "
        "global + N(0, sigma^2) noise in place of its change; alie (Baruch et al. 2019): the "
        "colluders know the honest updates of the round and send mean - z x std; label_flip: it "
        "trains on its own images, each labelled as another of its identities; sample_lie: it "
        "claims factor x its images in its Hello and Updates.");
    for (const auto& t : byzantine_tables(s.at("byzantine"), in.population.sites.size())) {
      byz.tables.push_back(t);
      main_table += (main_table.empty() ? "" : "\n") + t.to_markdown();
    }
    byz.tables.push_back(byzantine_runs_table(s.at("byzantine")));
    sections.push_back(byz);
  } else {
    ReportSection utility;
    utility.title = "Federated ReID";
    const Table main_runs = runs_table(in.runs);
    utility.tables.push_back(main_runs);
    utility.tables.push_back(rounds_table(in.runs));
    utility.figures.push_back({plot_rounds(in), "mAP of the global model after each round"});
    sections.push_back(utility);
    main_table = main_runs.to_markdown();
  }
  bool has_faults = false;
  for (const auto& r : in.runs)
    has_faults = has_faults || (!r.faults.empty() && !s.contains("byzantine"));
  if (has_faults) {
    ReportSection faults;
    faults.title = "Faults";
    faults.tables.push_back(faults_table(in.runs));
    sections.push_back(faults);
    main_table += "\n" + faults.tables.back().to_markdown();
  }
  if (s.contains("privacy_utility")) {
    ReportSection pu;
    pu.title = "Privacy and utility";
    pu.paragraphs.push_back(
        "T_p: a ReID model the attacker trained on raw images of other people (the held-out "
        "identities) queries the de-identified train data with raw images of the sites' people; a "
        "hit is the original identity or, for PIS, the partner mixed in. The attribute attack: a "
        "classifier trained on the same raw images predicts gender, hair length and age group from "
        "the de-identified images (mean of the three macro F1). PU-score = 2 / (I_u/S_u + "
        "I_p/(1-S_p)).");
    pu.tables.push_back(privacy_utility_table(s.at("privacy_utility")));
    for (const auto& f : plot_privacy_utility(in, s.at("privacy_utility")))
      pu.figures.push_back({f, f.stem().string() == "pu_sweep"
                                   ? "PU-score as the weight moves from utility to privacy"
                                   : "Each method's utility against the identity attack"});
    main_table = pu.tables.back().to_markdown();
    sections.push_back(pu);
  }
  if (s.contains("dp_sweep")) {
    ReportSection dp;
    dp.title = "Image DP sweep";
    dp.tables.push_back(dp_sweep_table(s.at("dp_sweep")));
    dp.figures.push_back({plot_dp_sweep(in, s.at("dp_sweep")),
                          "mAP vs epsilon per preset, centroid and instance retrieval"});
    main_table = dp.tables.back().to_markdown();
    sections.push_back(dp);
  }
  ReportSection images;
  images.title = "De-identified images";
  images.figures.push_back({deid_grid(in), "what leaves the camera: raw crops (top) and each "
                                           "method's output (never shared: only model updates "
                                           "are)"});
  sections.push_back(images);
  if (s.contains("attack")) {
    ReportSection attack;
    attack.title = "Gradient inversion replay";
    attack.paragraphs.push_back(
        "What an honest-but-curious aggregator can reconstruct from the bytes it received: the "
        "victim site sent its share over the real transport, the attacker decoded exactly those "
        "bytes and ran the attack. Label accuracy " +
        format_fixed(s.at("attack").at("label_accuracy"), 2) + "." +
        [&]() -> std::string {
          const std::string mode = s.at("attack").value("secure_aggregation", "off");
          if (mode == "masked")
            return " Under secure aggregation: the attack ran on the victim's masked update (its "
                   "words read as if unmasked), which is all one site's message gives the "
                   "aggregator.";
          if (mode == "sum")
            return " Under secure aggregation: the attack ran on the unmasked mean of " +
                   std::to_string(s.at("attack").value("secure_sites", 0)) + " sites' updates.";
          return "";
        }());
    attack.tables.push_back(attack_table(s.at("attack")));
    if (s.contains("attack_by_method"))
      attack.tables.push_back(attack_by_method_table(s.at("attack_by_method")));
    for (const auto& strip : in.attack_strips)
      if (fs::exists(strip))
        attack.figures.push_back({strip, "raw | de-identified | reconstruction over the "
                                         "iterations: " + strip.stem().string()});
    main_table += "\n" + attack.tables.back().to_markdown();
    sections.push_back(attack);
  }

  const std::string title = "ppreid simulation: " + s.at("name").get<std::string>();
  char footer[160];
  std::snprintf(footer, sizeof footer, "wall time %.1f s; seeds and settings in config.yaml",
                in.seconds);
  report::write_html_report(in.out / "report.html", title, sections, footer);
  util::write_file_atomic(in.out / "summary.md", report::render_markdown(title, sections, in.out));
  return main_table;
}

}  // namespace ppreid::sim
