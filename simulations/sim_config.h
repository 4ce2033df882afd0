#pragma once

// configs/sim/*.yaml: one simulated federation or a whole experiment (a series of federations)
// on one machine. Relative paths are resolved against the config's directory. Every key is
// checked; errors name the file, the dotted key and the line.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "aggregator/secure_aggregation_config.h"
#include "aggregator/strategy.h"
#include "aggregator/update_validator.h"
#include "core/deid/method_factory.h"
#include "core/profile/profile.h"
#include "core/reid/centroid_protocol.h"
#include "simulations/partition.h"

namespace ppreid::sim {

enum class Experiment {
  kFederation,      // one federation with one de-identification method (`deid`)
  kPrivacyUtility,  // one federation per method of `methods`, plus the identity and attribute attacks
  kDpSweep,         // one federation per (preset, epsilon) of `dp_sweep`
  kByzantine,       // one federation per strategy without attack, and per (attack, hostile
                    // count, strategy) of `byzantine`
};
// "federation", "privacy-utility", "dp-sweep", "byzantine"
std::string_view to_string(Experiment e);

enum class SiteRunner {
  kThreads,    // every site a thread of this process (faults can be injected)
  kProcesses,  // every site a `ppreid site` child process with its own generated config
};

// A fault the simulator injects into one site (threads runner only): a crash, a slow or broken
// site, or a hostile (Byzantine) one. The hostile behaviours and why they are built as they are:
// simulations/site_faults.h.
struct FaultSpec {
  enum class Kind {
    kDropout,    // from `from_round` on the site vanishes without a word (like a crash)
    kStraggler,  // holds its Updates back for `delay` while still sending heartbeats
    kNan,        // its Updates carry NaN in every floating-point tensor
    kScale,      // its Updates are the global weights + factor x its real change (boosted)
    kSignFlip,   // the global weights - factor x its real change
    kGaussian,   // the global weights + N(0, sigma^2) per coordinate instead of its change
    kAlie,       // "a little is enough": mean - z x std of the honest sites' updates
    kLabelFlip,  // trains on its own images, each labelled as another of its identities
    kSampleLie,  // claims factor x its train images in its Hello and in every Update
  };
  Kind kind = Kind::kStraggler;
  std::string site;  // "site-2"; empty in byzantine.attacks (the experiment picks the sites)
  std::int64_t from_round = 1;
  std::int64_t until_round = 0;  // last affected round; 0 = to the end
  std::chrono::milliseconds delay{0};
  double factor = 1.0;       // scale, sign_flip, sample_lie
  double sigma = 0.0;        // gaussian
  std::optional<double> z;   // alie: set by hand; else from the sites and the colluders
  // dropout under secure aggregation: the stage whose message the site never sends ("update":
  // its keys, i.e. before anything of the round leaves; "shares", "masked", "unmask").
  std::string stage = "update";
  bool applies(std::int64_t round) const {
    return round >= from_round && (until_round == 0 || round <= until_round);
  }
};
// dropout | straggler | nan | scale | sign_flip | gaussian | alie | label_flip | sample_lie
std::string_view to_string(FaultSpec::Kind kind);
// Throws ppreid::Error listing the kinds.
FaultSpec::Kind fault_kind_from_string(std::string_view name);
// The kind with its parameters, as tables and run names show it: "scale x100", "sign_flip",
// "gaussian sigma=0.1", "alie", "alie z=1.5", "sample_lie x10", "straggler 3 s".
std::string describe_fault(const FaultSpec& fault);

// An aggregation strategy of the byzantine experiment and its name in tables and run names:
// "fedavg", "trimmed_mean(trim_fraction=0.3)", "krum(f=2)".
struct NamedStrategy {
  std::string name;
  agg::StrategyConfig config;
};
std::string describe_strategy(const agg::StrategyConfig& strategy);

// The byzantine experiment: which attacks, how many hostile sites, against which strategies.
// The hostile sites are the LAST `hostile` sites of the partition (site-N, site-N-1, ...); each
// attack applies from round 1 to the end.
struct ByzantineSection {
  std::vector<FaultSpec> attacks;  // site empty; from_round 1, until_round 0
  std::vector<int> hostile = {1};
  std::vector<NamedStrategy> strategies;
};

// A de-identification method with the name its table row and plots use.
struct NamedMethod {
  std::string name;
  deid::MethodSpec spec;
};

// The gradient-inversion replay of a simulation (what the aggregator could reconstruct).
struct AttackSection {
  bool enabled = false;
  std::string model = "lenet";   // lenet | reid
  std::string method = "idlg";   // idlg | dlg
  std::string mode = "fedsgd";   // fedsgd | fedavg
  int images = 1;                // victims, taken from site-1's de-identified train split
  int iterations = 300;
  int size = 32;                 // lenet: square input
  int height = 16, width = 12;   // reid input (16x12: the smallest SSIM can score)
  double local_lr = 0.01;        // fedavg: the victim's SGD step size
  int local_steps = 1;           // fedavg: its steps
  // off | masked (the victim's masked update as the aggregator receives it) | sum (the unmasked
  // mean of secure_sites sites' updates): see simulations/replay.h
  std::string secure_aggregation = "off";
  int secure_sites = 3;
};

// The attacks of the privacy-utility experiment (T_p and the attribute attack).
struct PrivacySection {
  std::filesystem::path attacker_config;  // training config of the attacker's ReID model
  int attacker_epochs = 0;                // 0: the config's schedule
  int attribute_epochs = 10;              // the attribute classifier's epochs
};

// How the PIS model of a simulation is obtained: a trained checkpoint, or trained by the
// simulator on a public stand-in dataset (another synthetic population) before the federation.
struct PisSection {
  std::optional<std::filesystem::path> model;  // `ppreid pis train` checkpoint directory
  std::filesystem::path config;                // configs/pis/*.yaml when training
  int public_ids = 0;                          // identities of the public stand-in (0: data.ids)
};

struct SimConfig {
  std::filesystem::path file;
  std::string name;
  Experiment experiment = Experiment::kFederation;
  std::uint64_t seed = 1;
  SiteRunner runner = SiteRunner::kThreads;
  int threads = 2;  // LibTorch threads in total; each site trains with site_threads()

  // data: the synthetic population the sites split (train) and the held-out test split
  std::filesystem::path profile_file;
  Profile profile;  // its synth section already carries the overrides and the seed

  PartitionOptions partition;

  // federation:
  std::filesystem::path model_config;  // a training config (configs/train/*.yaml)
  std::int64_t rounds = 2;
  int local_epochs = 1;
  std::optional<double> learning_rate;  // Task override; else the model config's
  std::string per_round = "all";
  std::int64_t min_updates = 1;
  double round_timeout_s = 300;
  double site_timeout_s = 10;
  int max_attempts = 3;
  agg::StrategyConfig strategy;
  // federation.validation: the aggregator's guard (aggregator/update_guard.h); the defaults are
  // the aggregator's, except resend_grace 1 s: a simulated site never resends a refused update.
  // The legacy federation.max_delta_norm sets an absolute bound.
  agg::ValidationLimits validation = [] {
    agg::ValidationLimits v;
    v.resend_grace_seconds = 1.0;
    return v;
  }();
  // federation.secure_aggregation: as the aggregator's section (docs/PROTOCOL.md).
  agg::SecureAggregationConfig secure_aggregation;
  bool deidentify_test = true;  // the held-out split is de-identified like the sites' data
  // federation.centroid_protocol: how the aggregator's held-out evaluation computes the centroid
  // figures (reference: centroids-reid, comparable with the papers; see core/reid/centroids.h).
  reid::CentroidProtocol centroid_protocol = reid::CentroidProtocol::kReference;

  deid::MethodSpec deid;              // experiment federation
  std::vector<NamedMethod> methods;   // experiment privacy-utility
  std::vector<std::string> dp_presets = {"A", "B", "C", "D"};  // experiment dp-sweep
  std::vector<double> dp_epsilons;

  std::vector<FaultSpec> faults;
  ByzantineSection byzantine;  // experiment byzantine
  AttackSection attack;
  PrivacySection privacy;
  PisSection pis;

  // Sites of the partition (derived kinds count the municipalities/cameras at run time).
  int site_threads(int sites) const { return std::max(1, threads / std::max(1, sites)); }
};

// The resolved configuration (every default filled in, paths absolute), as written to
// OUT/config.yaml; parse_sim_config reads it back to the same simulation.
std::string format_sim_config(const SimConfig& config);

SimConfig load_sim_config(const std::filesystem::path& file);
SimConfig parse_sim_config(const std::string& yaml, const std::filesystem::path& file);

}  // namespace ppreid::sim
