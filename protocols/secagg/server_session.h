#pragma once

// The aggregator's side of one secure-aggregation round, transport-free: it routes keys and
// sealed shares, folds masked updates into a running sum mod 2^bits (one vector, whatever the
// number of sites), decides who survived, and unmasks the sum from the shares the survivors
// return. It never holds a site's update in the clear, and it never asks one site for both
// secrets of another.

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "protocols/message.h"
#include "protocols/secagg/params.h"
#include "protocols/secagg/site_session.h"

namespace ppreid::secagg {

// The round cannot complete (too few sites left at a stage, or too few shares to unmask):
// the aggregator retries it. what() says why, for metrics.jsonl.
class RoundShortfall : public Error {
 public:
  using Error::Error;
};

struct SecureSum {
  // The survivors' weighted mean of the update values (float: the model's precision; the
  // quantization step is far coarser).
  std::vector<float> mean;
  double weight = 0;         // sum of the survivors' weight ratios q_r / Q
  double samples = 0;        // weight * max_weight: their training images, as quantized
  double mean_loss = 0;      // weighted mean training loss
  std::vector<std::string> survivors;  // sent a masked update (their sum is the result)
  std::vector<std::string> dropped;    // shared keys but sent no masked update
  std::vector<std::string> excluded;   // left out at the share stage (too few live neighbours)
  std::vector<std::string> unshared;   // advertised keys but sent no shares (left out too)
};

struct ServerOptions {
  std::size_t neighbours = 0;  // k: 0 = complete graph
  std::uint32_t threshold = 0; // t: 0 = majority of a neighbourhood
  std::size_t min_sites = 1;   // fewer survivors at any stage: RoundShortfall
  std::uint64_t graph_seed = 0;
};

class ServerSession {
 public:
  // `values`: the number of model values in every update.
  ServerSession(RoundContext ctx, Params params, std::set<std::string> asked, std::size_t values,
                ServerOptions options);

  enum class Stage { kKeys, kShares, kMasked, kUnmask, kDone };
  Stage stage() const { return stage_; }
  // The sites whose message the current stage waits for (those that have not answered yet).
  std::set<std::string> waiting_for() const;

  // Each add_ throws ProtocolError for a message that does not fit (wrong stage, a site that is
  // not part of the stage, a repeated message, wrong sizes); the session is unchanged then.
  void add_keys(const std::string& site, const proto::SecAggKeys& keys);
  // Ends the key stage: the KeyList of every site that advertised keys. RoundShortfall when
  // fewer than min_sites did or the threshold does not fit the neighbourhoods.
  std::map<std::string, proto::SecAggKeyList> close_keys();

  void add_shares(const std::string& site, const proto::SecAggShares& shares);
  // Ends the share stage: sites with fewer than t live neighbours (themselves included) are left
  // out, repeatedly, since their secrets could never be rebuilt; the others get the shares sealed
  // for them by the remaining sites.
  std::map<std::string, proto::SecAggShareList> close_shares();

  void add_masked(const std::string& site, const proto::MaskedUpdate& update);
  // Ends the masked stage: the UnmaskRequest for every survivor. RoundShortfall when fewer than
  // min_sites survived or some secret has fewer than t live holders.
  std::map<std::string, proto::UnmaskRequest> close_masked();

  void add_unmask(const std::string& site, const proto::UnmaskShares& shares);
  // "" when every survivor's self-mask seed and every dropped site's mask key can be rebuilt
  // from the shares received so far; otherwise the first that cannot, and how many shares it has.
  std::string shortfall() const;
  // Rebuilds the secrets, removes the masks and dequantizes. RoundShortfall when shortfall() is
  // not empty; ProtocolError when a rebuilt mask key does not match the key its site advertised
  // or the shares disagree (a survivor returned a corrupted share).
  SecureSum finish();

  std::uint32_t threshold() const { return threshold_; }
  const std::map<std::string, std::vector<std::string>>& neighbourhoods() const { return hoods_; }

 private:
  void expect(Stage stage, const char* what, const std::string& site) const;
  std::set<std::string> live_neighbours(const std::string& site, const std::set<std::string>& live) const;

  RoundContext ctx_;
  Params params_;
  ServerOptions options_;
  std::set<std::string> asked_;
  std::size_t values_;
  Stage stage_ = Stage::kKeys;
  std::uint32_t threshold_ = 0;
  std::map<std::string, proto::SecAggKeys> keys_;                      // U1
  std::map<std::string, std::vector<std::string>> hoods_;              // over U1
  std::map<std::string, std::vector<proto::SealedShare>> sealed_;      // U2, by sender
  std::set<std::string> sharing_;                                      // U2 after exclusions
  std::vector<std::string> excluded_;
  std::vector<std::string> unshared_;
  std::set<std::string> masked_;                                       // U3
  std::vector<std::uint32_t> sum32_;
  std::vector<std::uint64_t> sum64_;
  std::map<std::string, proto::UnmaskRequest> requests_;
  std::set<std::string> answered_;
  std::map<std::string, std::vector<Share>> seed_shares_;  // survivors' self-mask seeds
  std::map<std::string, std::vector<Share>> key_shares_;   // dropped sites' mask keys
};

const char* to_string(ServerSession::Stage stage);  // "keys", "shares", "masked", "unmask", "done"

}  // namespace ppreid::secagg
