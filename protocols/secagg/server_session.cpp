#include "protocols/secagg/server_session.h"

#include <algorithm>
#include <cmath>

#include "protocols/secagg/graph.h"
#include "protocols/secagg/quantize.h"
#include "protocols/secagg/shamir.h"

namespace ppreid::secagg {
namespace {

std::string list_of(const std::set<std::string>& ids) {
  std::string out;
  for (const auto& id : ids) out += (out.empty() ? "" : ", ") + id;
  return out.empty() ? "none" : out;
}

// RoundShortfall unless `sites` holds at least `min_sites` (and 2: the sum of one site's update is
// that update); `what` says what they did, e.g. "advertised keys".
void require_sites(const std::set<std::string>& sites, std::size_t min_sites, const std::string& what) {
  const std::size_t need = std::max<std::size_t>(min_sites, 2);
  if (sites.size() < need)
    throw RoundShortfall("secure aggregation: " + std::to_string(sites.size()) + " site(s) " + what +
                         " (" + list_of(sites) + "), " + std::to_string(need) + " needed");
}

template <typename Word>
void add_words(std::vector<Word>& sum, const std::vector<std::uint8_t>& bytes) {
  const Word* w = reinterpret_cast<const Word*>(bytes.data());
  for (std::size_t i = 0; i < sum.size(); ++i) sum[i] += w[i];  // wraps mod 2^bits
}

}  // namespace

const char* to_string(ServerSession::Stage stage) {
  switch (stage) {
    case ServerSession::Stage::kKeys: return "keys";
    case ServerSession::Stage::kShares: return "shares";
    case ServerSession::Stage::kMasked: return "masked";
    case ServerSession::Stage::kUnmask: return "unmask";
    case ServerSession::Stage::kDone: return "done";
  }
  return "?";
}

ServerSession::ServerSession(RoundContext ctx, Params params, std::set<std::string> asked,
                             std::size_t values, ServerOptions options)
    : ctx_(std::move(ctx)),
      params_(params),
      options_(options),
      asked_(std::move(asked)),
      values_(values) {
  if (std::string why = unsafe_reason(params_, asked_.size()); !why.empty())
    throw Error("secure aggregation: " + why);
}

void ServerSession::expect(Stage stage, const char* what, const std::string& site) const {
  if (stage_ != stage)
    throw ProtocolError(std::string(what) + " from " + site + " arrived in the " +
                        to_string(stage_) + " stage of round " + std::to_string(ctx_.round));
}

std::set<std::string> ServerSession::waiting_for() const {
  std::set<std::string> out;
  auto missing = [&](const auto& candidates, const auto& have) {
    for (const auto& id : candidates)
      if (!have.count(id)) out.insert(id);
  };
  switch (stage_) {
    case Stage::kKeys: missing(asked_, keys_); break;
    case Stage::kShares: {
      std::set<std::string> u1;
      for (const auto& [id, k] : keys_) u1.insert(id);
      missing(u1, sealed_);
      break;
    }
    case Stage::kMasked: missing(sharing_, masked_); break;
    case Stage::kUnmask: {
      std::set<std::string> asked;
      for (const auto& [id, r] : requests_) asked.insert(id);
      missing(asked, answered_);
      break;
    }
    case Stage::kDone: break;
  }
  return out;
}

void ServerSession::add_keys(const std::string& site, const proto::SecAggKeys& keys) {
  expect(Stage::kKeys, "SecAggKeys", site);
  if (!asked_.count(site)) throw ProtocolError("SecAggKeys from " + site + ", which was not asked");
  if (keys_.count(site)) throw ProtocolError("a second SecAggKeys from " + site);
  if (keys.encryption_key == keys.mask_key)
    throw ProtocolError("SecAggKeys from " + site + " uses one key for both purposes");
  for (const auto& [other, k] : keys_)
    if (k.encryption_key == keys.encryption_key || k.mask_key == keys.mask_key ||
        k.encryption_key == keys.mask_key || k.mask_key == keys.encryption_key)
      throw ProtocolError("SecAggKeys from " + site + " repeats a key of " + other);
  keys_[site] = keys;
}

std::set<std::string> ServerSession::live_neighbours(const std::string& site,
                                                     const std::set<std::string>& live) const {
  std::set<std::string> out;
  for (const auto& n : hoods_.at(site))
    if (live.count(n)) out.insert(n);
  return out;
}

std::map<std::string, proto::SecAggKeyList> ServerSession::close_keys() {
  expect(Stage::kKeys, "the end of the key stage", "the aggregator");
  std::set<std::string> u1;
  for (const auto& [id, k] : keys_) u1.insert(id);
  require_sites(u1, options_.min_sites, "advertised keys");
  hoods_ = secagg::neighbourhoods({u1.begin(), u1.end()}, options_.neighbours, options_.graph_seed);
  std::size_t smallest = u1.size();
  for (const auto& [id, hood] : hoods_) smallest = std::min(smallest, hood.size());
  threshold_ = options_.threshold ? options_.threshold : majority_threshold(smallest);
  for (const auto& [id, hood] : hoods_)
    if (std::string why = neighbourhood_problem(threshold_, hood.size()); !why.empty())
      throw RoundShortfall("secure aggregation: the neighbourhood of " + id + ": " + why);
  std::map<std::string, proto::SecAggKeyList> out;
  for (const auto& [id, hood] : hoods_) {
    proto::SecAggKeyList& list = out[id];
    list.threshold = threshold_;
    for (const auto& n : hood)
      list.neighbours.push_back({n, keys_.at(n).encryption_key, keys_.at(n).mask_key});
  }
  stage_ = Stage::kShares;
  return out;
}

void ServerSession::add_shares(const std::string& site, const proto::SecAggShares& shares) {
  expect(Stage::kShares, "SecAggShares", site);
  auto hood = hoods_.find(site);
  if (hood == hoods_.end())
    throw ProtocolError("SecAggShares from " + site + ", which advertised no keys this round");
  if (sealed_.count(site)) throw ProtocolError("a second SecAggShares from " + site);
  std::set<std::string> want(hood->second.begin(), hood->second.end());
  want.erase(site);
  std::set<std::string> got;
  for (const auto& s : shares.shares)
    if (!want.count(s.site_id) || !got.insert(s.site_id).second)
      throw ProtocolError("SecAggShares from " + site + " holds a share for '" + s.site_id +
                          "', not a neighbour or named twice");
  if (got != want)
    throw ProtocolError("SecAggShares from " + site + " holds " + std::to_string(got.size()) +
                        " shares; its neighbourhood needs " + std::to_string(want.size()));
  sealed_[site] = shares.shares;
}

std::map<std::string, proto::SecAggShareList> ServerSession::close_shares() {
  expect(Stage::kShares, "the end of the share stage", "the aggregator");
  for (const auto& [id, s] : sealed_) sharing_.insert(id);
  for (const auto& [id, k] : keys_)
    if (!sealed_.count(id)) unshared_.push_back(id);
  // A site whose secrets have fewer than t live holders could never be unmasked if it dropped
  // later, and its neighbours would mask with it: leave it out before anyone masks.
  for (bool changed = true; changed;) {
    changed = false;
    for (auto it = sharing_.begin(); it != sharing_.end();) {
      if (live_neighbours(*it, sharing_).size() < threshold_) {
        excluded_.push_back(*it);
        it = sharing_.erase(it);
        changed = true;
      } else {
        ++it;
      }
    }
  }
  require_sites(sharing_, options_.min_sites,
                "shared their keys with at least " + std::to_string(threshold_) +
                    " live neighbours (the threshold)");
  std::map<std::string, proto::SecAggShareList> out;
  for (const auto& id : sharing_) out[id];
  for (const auto& sender : sharing_)
    for (const auto& s : sealed_.at(sender))
      if (sharing_.count(s.site_id)) out[s.site_id].shares.push_back({sender, s.ciphertext});
  sealed_.clear();
  if (params_.modulus_bits == 64) sum64_.assign(values_ + kExtraWords, 0);
  else sum32_.assign(values_ + kExtraWords, 0);
  stage_ = Stage::kMasked;
  return out;
}

void ServerSession::add_masked(const std::string& site, const proto::MaskedUpdate& update) {
  expect(Stage::kMasked, "MaskedUpdate", site);
  if (!sharing_.count(site))
    throw ProtocolError("MaskedUpdate from " + site + ", which is not in this round's sum");
  if (masked_.count(site)) throw ProtocolError("a second MaskedUpdate from " + site);
  const bool wide = params_.modulus_bits == 64;
  const std::size_t words = values_ + kExtraWords;
  if (update.words.size() != 1 || update.words[0].name != "masked")
    throw ProtocolError("MaskedUpdate from " + site + " must hold one tensor named 'masked'");
  const proto::WireTensor& t = update.words[0];
  if (t.dtype != (wide ? proto::DType::kI64 : proto::DType::kI32) ||
      t.data.size() != words * (wide ? 8 : 4))
    throw ProtocolError("MaskedUpdate from " + site + " holds " + std::to_string(t.data.size()) +
                        " bytes; " + std::to_string(words) + " " + (wide ? "64" : "32") +
                        "-bit words expected");
  if (wide) add_words(sum64_, t.data);
  else add_words(sum32_, t.data);
  masked_.insert(site);
}

std::map<std::string, proto::UnmaskRequest> ServerSession::close_masked() {
  expect(Stage::kMasked, "the end of the masked stage", "the aggregator");
  require_sites(masked_, options_.min_sites, "sent a masked update");
  std::set<std::string> dropped;
  for (const auto& id : sharing_)
    if (!masked_.count(id)) dropped.insert(id);
  // Every secret to rebuild needs t holders among the survivors (the only sites asked).
  for (const auto& id : sharing_) {
    const std::size_t holders = live_neighbours(id, masked_).size();
    if (holders < threshold_)
      throw RoundShortfall("secure aggregation: the " +
                           std::string(masked_.count(id) ? "self-mask seed" : "mask key") +
                           " of " + id + " has " + std::to_string(holders) +
                           " surviving holder(s), threshold " + std::to_string(threshold_));
  }
  for (const auto& u : masked_) {
    proto::UnmaskRequest& r = requests_[u];
    for (const auto& n : hoods_.at(u)) {
      if (masked_.count(n)) r.survivors.push_back(n);
      else if (dropped.count(n)) r.dropped.push_back(n);
    }
  }
  stage_ = Stage::kUnmask;
  return requests_;
}

void ServerSession::add_unmask(const std::string& site, const proto::UnmaskShares& shares) {
  expect(Stage::kUnmask, "UnmaskShares", site);
  auto req = requests_.find(site);
  if (req == requests_.end())
    throw ProtocolError("UnmaskShares from " + site + ", which was not asked");
  if (answered_.count(site)) throw ProtocolError("a second UnmaskShares from " + site);
  std::set<std::string> seeds(req->second.survivors.begin(), req->second.survivors.end());
  std::set<std::string> keys(req->second.dropped.begin(), req->second.dropped.end());
  std::vector<std::pair<std::string, Share>> seed_in, key_in;
  for (const auto& s : shares.shares) {
    auto share = Share::from_bytes(s.share);
    const bool is_seed = s.kind == proto::SecretKind::kSelfMaskSeed;
    std::set<std::string>& allowed = is_seed ? seeds : keys;
    if (!share || !allowed.erase(s.site_id))
      throw ProtocolError("UnmaskShares from " + site + ": a share of '" + s.site_id +
                          "' that was not asked for, repeated or malformed");
    (is_seed ? seed_in : key_in).emplace_back(s.site_id, *share);
  }
  for (auto& [owner, share] : seed_in) seed_shares_[owner].push_back(share);
  for (auto& [owner, share] : key_in) key_shares_[owner].push_back(share);
  answered_.insert(site);
}

std::string ServerSession::shortfall() const {
  if (stage_ != Stage::kUnmask) return std::string("the round is in the ") + to_string(stage_) + " stage";
  for (const auto& id : masked_) {
    auto it = seed_shares_.find(id);
    const std::size_t n = it == seed_shares_.end() ? 0 : it->second.size();
    if (n < threshold_)
      return "the self-mask seed of " + id + " has " + std::to_string(n) + " share(s), threshold " +
             std::to_string(threshold_);
  }
  for (const auto& id : sharing_) {
    if (masked_.count(id)) continue;
    auto it = key_shares_.find(id);
    const std::size_t n = it == key_shares_.end() ? 0 : it->second.size();
    if (n < threshold_)
      return "the mask key of dropped site " + id + " has " + std::to_string(n) +
             " share(s), threshold " + std::to_string(threshold_);
  }
  return {};
}

SecureSum ServerSession::finish() {
  expect(Stage::kUnmask, "the end of the unmask stage", "the aggregator");
  if (std::string why = shortfall(); !why.empty())
    throw RoundShortfall("secure aggregation cannot unmask the sum: " + why);
  const int t = static_cast<int>(threshold_);
  auto remove = [&](auto& sum) {
    using Word = typename std::remove_reference_t<decltype(sum)>::value_type;
    std::span<Word> words(sum);
    for (const auto& id : masked_) {
      try {
        apply_stream(combine(seed_shares_.at(id), t), words, StreamOp::kSubtract);
      } catch (const ProtocolError&) {
        throw;
      } catch (const Error& e) {
        throw ProtocolError("the self-mask seed of " + id + " cannot be rebuilt: " + e.what());
      }
    }
    for (const auto& d : sharing_) {
      if (masked_.count(d)) continue;
      Secret32 secret;
      try {
        secret = combine(key_shares_.at(d), t);
      } catch (const Error& e) {
        throw ProtocolError("the mask key of " + d + " cannot be rebuilt: " + e.what());
      }
      const Key32 advertised = key_of(keys_.at(d).mask_key);
      if (X25519KeyPair::from_secret(secret).public_key != advertised)
        throw ProtocolError("the rebuilt mask key of " + d +
                            " does not match the key it advertised: a share was corrupted");
      for (const auto& u : hoods_.at(d)) {
        if (!masked_.count(u)) continue;
        const Secret32 seed = pair_mask_seed(x25519(secret, key_of(keys_.at(u).mask_key)), ctx_, u, d);
        // u added the mask when u > d and subtracted it otherwise: undo that.
        apply_stream(seed, words, u > d ? StreamOp::kSubtract : StreamOp::kAdd);
      }
    }
    SecureSum out;
    const std::uint64_t weight_word = static_cast<std::uint64_t>(words[0]);
    if (weight_word == 0)
      throw ProtocolError("the survivors' weights sum to zero: every site reported no samples");
    const std::size_t m = masked_.size();
    out.weight = static_cast<double>(weight_word) / static_cast<double>(params_.quantization_range);
    out.samples = out.weight * params_.max_weight;
    out.mean_loss = dequantize_mean(words[1], m, weight_word, params_) * kLossScale;
    out.mean.resize(values_);
    for (std::size_t i = 0; i < values_; ++i)
      out.mean[i] = static_cast<float>(dequantize_mean(words[kExtraWords + i], m, weight_word, params_));
    return out;
  };
  SecureSum out = params_.modulus_bits == 64 ? remove(sum64_) : remove(sum32_);
  out.survivors.assign(masked_.begin(), masked_.end());
  for (const auto& id : sharing_)
    if (!masked_.count(id)) out.dropped.push_back(id);
  out.excluded = excluded_;
  out.unshared = unshared_;
  stage_ = Stage::kDone;
  sum32_ = {};
  sum64_ = {};
  return out;
}

}  // namespace ppreid::secagg
