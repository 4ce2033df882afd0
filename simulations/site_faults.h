#pragma once

// The faults the simulator injects into site threads (FaultSpec, sim_config.h), as the site
// runtime's client::SiteHooks. Besides crashes, stragglers and NaN, the Byzantine behaviours of
// issue 19, each as the literature defines it:
//  * scale, sign_flip: the site sends global + factor x (trained - global), resp. global -
//    factor x (trained - global): a boosted or reversed change.
//  * gaussian: global + N(0, sigma^2) per coordinate in place of its change, the noise drawn from
//    a generator seeded by the simulation seed, the site and the round (reruns send the same).
//  * alie, "a little is enough" (Baruch et al., NeurIPS 2019), the omniscient variant of the
//    paper's experiments: the colluding sites know the honest sites' updates of the round and
//    all send mean - z x std, per coordinate, a shift small enough to hide inside the honest
//    spread. z from the paper: s = floor(n/2 + 1) - f sites must be "won over", z =
//    Phi^-1((n - s) / n), n the federation's sites, f the colluders. The sites of a federation
//    run in threads of one process, so they meet on an AlieBoard.
//  * label_flip: the site trains on its own images with wrong labels. A consistent relabelling
//    (every image of person p labelled q) changes nothing in ReID: identity labels are arbitrary
//    names and the classifier head never leaves the site. So each image gets the label of
//    ANOTHER of the site's identities, and the images of one person are spread over different
//    labels (flip_labels): the identity, triplet and centroid losses then pull apart images of
//    the same person and together images of different people, which is what hurts a metric.
//  * sample_lie: the site claims factor x its train images, in its Hello and in every Update's
//    sample_count, to weigh more in FedAvg.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "client/site.h"
#include "core/data/dataset.h"
#include "core/reid/named_tensors.h"
#include "simulations/sim_config.h"

namespace ppreid::sim {

// shared = global + factor x (shared - global) for every floating-point tensor (by position,
// names compared for safety); other tensors (e.g. BatchNorm counters) are left as trained.
// scale: factor; sign_flip: -factor.
void scale_change(const reid::NamedTensors& global, reid::NamedTensors& shared, double factor);

// shared = global + N(0, sigma^2) per coordinate of every floating-point tensor, drawn from a
// generator seeded with `seed` (gaussian_seed), so the same seed sends the same tensors.
void replace_with_noise(const reid::NamedTensors& global, reid::NamedTensors& shared, double sigma,
                        std::uint64_t seed);
std::uint64_t gaussian_seed(std::uint64_t sim_seed, std::size_t site_index, std::uint64_t round);

// The standard normal quantile Phi^-1(p), 0 < p < 1, to about 1e-15 relative.
double inverse_normal_cdf(double p);

// Baruch et al.'s z for n sites of which f collude: s = floor(n/2 + 1) - f, z = Phi^-1((n - s)/n).
// Throws ppreid::Error when f leaves no honest majority to win over (s < 1) or f >= n.
double alie_z(int n, int f);

// The ALIE update: per coordinate mean - z x std over `honest` (std: the sample standard
// deviation, n - 1 in the denominator, as torch.std in the paper's code; 0 for one update), for
// every floating-point tensor; the others are taken from `own`. Every update must have own's
// names and shapes.
reid::NamedTensors alie_update(const std::vector<reid::NamedTensors>& honest, double z,
                               const reid::NamedTensors& own);

// label_flip: image k (in split order) of the identity labelled p gets label
// (p + 1 + k mod (P - 1)) mod P, P = num_train_ids: never its own label, always one of the
// site's, and the K images of one person spread over up to P - 1 other labels. Throws
// ppreid::Error for fewer than 2 identities (there is no other label to give).
void flip_labels(std::vector<data::ImageRecord>& train, int num_train_ids);

// Where the sites of one federation meet for the ALIE attack. Honest sites post what they send
// each round; a colluder waits until every honest site posted or left (at most `wait`, then it
// crafts from what it has and logs who was missing: a site that failed its round, or was not
// asked), and all colluders of a round send the same crafted update. Thread-safe.
class AlieBoard {
 public:
  AlieBoard(std::vector<std::string> honest_sites, double z, std::chrono::milliseconds wait);
  double z() const { return z_; }
  const std::vector<std::string>& honest_sites() const { return honest_; }

  // An honest site's Update of `round` (cloned: the site keeps training its tensors).
  void post(std::uint64_t round, const std::string& site, const reid::NamedTensors& sent);
  // The site is gone for good (vanished, failed): nobody waits for it any more.
  void leave(const std::string& site);
  // The federation is over: colluders stop waiting.
  void close();

  // The round's ALIE update for `colluder`, whose own trained weights are `own` (for the tensors
  // ALIE does not touch); nullopt when no honest update was posted in time.
  std::optional<reid::NamedTensors> craft(std::uint64_t round, const std::string& colluder,
                                          const reid::NamedTensors& own);

 private:
  struct Round {
    std::map<std::string, reid::NamedTensors> posted;
    std::optional<reid::NamedTensors> crafted;
  };
  bool complete(const Round& r) const;  // with mu_ held

  const std::vector<std::string> honest_;
  const double z_;
  const std::chrono::milliseconds wait_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::map<std::uint64_t, Round> rounds_;
  std::set<std::string> left_;
  bool closed_ = false;
};

// What the hooks of one site need besides its faults.
struct FaultContext {
  std::uint64_t seed = 1;        // the simulation seed (gaussian noise)
  std::size_t site_index = 0;    // its position in the population
  std::string site_id;
  AlieBoard* board = nullptr;    // set when a site of the federation runs alie
};

// The hooks that make a site behave as `faults` say (all of them this site's).
client::SiteHooks fault_hooks(const std::vector<FaultSpec>& faults, const FaultContext& context);

}  // namespace ppreid::sim
