#pragma once

// A site's side of one secure-aggregation round (Bonawitz et al. 2017 with SecAgg+'s
// neighbourhoods), transport-free: each stage takes the aggregator's message and returns the
// site's answer. Every check that protects the site's update is here; a violation throws
// ProtocolError and the site leaves the round.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "core/util/error.h"
#include "protocols/message.h"
#include "protocols/secagg/crypto.h"
#include "protocols/secagg/params.h"
#include "protocols/secagg/shamir.h"

namespace ppreid::secagg {

// The aggregator asked for something the protocol forbids, or a peer's message does not verify.
class ProtocolError : public Error {
 public:
  using Error::Error;
};

// What binds derived keys and sealed shares to one round of one federation.
struct RoundContext {
  std::string federation;
  std::uint64_t round = 0;
};

// The symmetric key two sites derive for sealing shares, and the seed of their pairwise mask
// (X25519 -> HKDF-SHA256, salted with the federation and round, the pair's ids in order).
Secret32 share_key(const Secret32& ecdh, const RoundContext& ctx, const std::string& a,
                   const std::string& b);
Secret32 pair_mask_seed(const Secret32& ecdh, const RoundContext& ctx, const std::string& a,
                        const std::string& b);
// The associated data of a share sealed from `sender` to `recipient`.
Bytes share_associated_data(const RoundContext& ctx, const std::string& sender,
                            const std::string& recipient);

class SiteSession {
 public:
  // Refuses (ProtocolError) parameters outside unsafe_reason()'s bounds for `sites` sites.
  SiteSession(RoundContext ctx, std::string site_id, Params params, std::size_t sites);

  const Params& params() const { return params_; }
  std::uint64_t round() const { return ctx_.round; }

  // Stage 1: this round's public keys (both pairs are fresh).
  proto::SecAggKeys keys() const;

  // Stage 2: the neighbourhood (this site included, with the keys it advertised) -> one sealed
  // share for every other neighbour, holding shares of the self-mask seed and of the mask key.
  proto::SecAggShares share_keys(const proto::SecAggKeyList& list);

  // Stage 3: the shares sealed for this site -> the masked words of `update` (the site's change
  // of the shared weights, flattened) with weight `samples` and the training loss. The pairwise
  // masks are with the neighbours whose shares arrived: the others are out of the round.
  proto::MaskedUpdate mask(const proto::SecAggShareList& list, std::span<const float> update,
                           double samples, double loss);

  // Stage 4: shares of the survivors' self-mask seeds and of the dropped sites' mask keys.
  // Answered once per round; never for a site in both lists; only for sites whose shares this
  // site holds; refused when fewer than t neighbours survived (the sum would cover too few).
  proto::UnmaskShares unmask(const proto::UnmaskRequest& request);

  // The neighbours whose shares this site holds (after mask()).
  const std::set<std::string>& holders() const { return senders_; }

 private:
  enum class Stage { kKeys, kShares, kMask, kUnmask, kDone };
  void expect(Stage stage, const char* what) const;

  RoundContext ctx_;
  std::string id_;
  Params params_;
  Stage stage_ = Stage::kKeys;
  X25519KeyPair encryption_;
  X25519KeyPair masking_;
  Secret32 self_seed_;
  std::uint32_t threshold_ = 0;
  std::map<std::string, proto::NeighbourKeys> neighbours_;  // this site included
  std::set<std::string> senders_;                           // shares received (self included)
  std::map<std::string, Share> seed_shares_;  // shares of neighbours' self-mask seeds
  std::map<std::string, Share> key_shares_;   // shares of neighbours' mask keys
};

// The plaintext inside a sealed share: sender, recipient, the two shares.
struct SharePlaintext {
  std::string sender;
  std::string recipient;
  Share seed_share;
  Share key_share;

  Bytes to_bytes() const;
  static std::optional<SharePlaintext> from_bytes(std::span<const std::uint8_t> bytes);
};

// Key bytes of a message field (checked to be 32 bytes by the decoder).
Key32 key_of(const std::vector<std::uint8_t>& bytes);

}  // namespace ppreid::secagg
