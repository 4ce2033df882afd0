#include "protocols/secagg/site_session.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "protocols/secagg/quantize.h"

namespace ppreid::secagg {
namespace {

std::string salt_of(const RoundContext& ctx) {
  return "ppreid secagg v1|" + ctx.federation + "|" + std::to_string(ctx.round);
}

std::string pair_info(const char* purpose, const std::string& a, const std::string& b) {
  const auto& [lo, hi] = std::minmax(a, b);
  return std::string(purpose) + "|" + lo + "|" + hi;
}

void put_id(Bytes& out, const std::string& id) {
  out.push_back(static_cast<std::uint8_t>(id.size()));
  out.insert(out.end(), id.begin(), id.end());
}

bool get_id(std::span<const std::uint8_t>& in, std::string& id) {
  if (in.empty() || in[0] > in.size() - 1) return false;
  id.assign(reinterpret_cast<const char*>(in.data() + 1), in[0]);
  in = in.subspan(1 + in[0]);
  return true;
}

template <typename Word>
std::span<Word> words_of(proto::WireTensor& t) {
  return {reinterpret_cast<Word*>(t.data.data()), t.data.size() / sizeof(Word)};
}

}  // namespace

Key32 key_of(const std::vector<std::uint8_t>& bytes) {
  Key32 k{};
  if (bytes.size() != k.size()) throw ProtocolError("a public key is not 32 bytes");
  std::copy(bytes.begin(), bytes.end(), k.begin());
  return k;
}

Secret32 share_key(const Secret32& ecdh, const RoundContext& ctx, const std::string& a,
                   const std::string& b) {
  return hkdf_key(ecdh, salt_of(ctx), pair_info("share key", a, b));
}

Secret32 pair_mask_seed(const Secret32& ecdh, const RoundContext& ctx, const std::string& a,
                        const std::string& b) {
  return hkdf_key(ecdh, salt_of(ctx), pair_info("pair mask", a, b));
}

Bytes share_associated_data(const RoundContext& ctx, const std::string& sender,
                            const std::string& recipient) {
  const std::string s = salt_of(ctx) + "|from " + sender + "|to " + recipient;
  return Bytes(s.begin(), s.end());
}

Bytes SharePlaintext::to_bytes() const {
  Bytes out;
  put_id(out, sender);
  put_id(out, recipient);
  const Bytes a = seed_share.to_bytes(), b = key_share.to_bytes();
  out.insert(out.end(), a.begin(), a.end());
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

std::optional<SharePlaintext> SharePlaintext::from_bytes(std::span<const std::uint8_t> in) {
  SharePlaintext p;
  if (!get_id(in, p.sender) || !get_id(in, p.recipient) || in.size() != 2 * kShareBytes)
    return std::nullopt;
  auto a = Share::from_bytes(in.first(kShareBytes));
  auto b = Share::from_bytes(in.subspan(kShareBytes));
  if (!a || !b) return std::nullopt;
  p.seed_share = *a;
  p.key_share = *b;
  return p;
}

SiteSession::SiteSession(RoundContext ctx, std::string site_id, Params params, std::size_t sites)
    : ctx_(std::move(ctx)),
      id_(std::move(site_id)),
      params_(params),
      encryption_(X25519KeyPair::generate()),
      masking_(X25519KeyPair::generate()) {
  if (std::string why = unsafe_reason(params_, sites); !why.empty())
    throw ProtocolError("secure aggregation settings refused: " + why);
}

void SiteSession::expect(Stage stage, const char* what) const {
  if (stage_ != stage)
    throw ProtocolError(std::string("secure aggregation: ") + what +
                        " out of order in round " + std::to_string(ctx_.round) +
                        (stage_ == Stage::kDone ? " (this site already answered the unmask "
                                                  "request; each share is given once)"
                                                : ""));
}

proto::SecAggKeys SiteSession::keys() const {
  return {{encryption_.public_key.begin(), encryption_.public_key.end()},
          {masking_.public_key.begin(), masking_.public_key.end()}};
}

proto::SecAggShares SiteSession::share_keys(const proto::SecAggKeyList& list) {
  expect(Stage::kKeys, "SecAggKeyList");
  if (std::string why = neighbourhood_problem(list.threshold, list.neighbours.size()); !why.empty())
    throw ProtocolError("secure aggregation neighbourhood refused: " + why);
  std::set<std::vector<std::uint8_t>> seen_keys;
  for (const auto& n : list.neighbours) {
    if (!neighbours_.emplace(n.site_id, n).second)
      throw ProtocolError("SecAggKeyList names site '" + n.site_id + "' twice");
    if (!seen_keys.insert(n.encryption_key).second || !seen_keys.insert(n.mask_key).second)
      throw ProtocolError("SecAggKeyList repeats a public key (site '" + n.site_id + "')");
  }
  auto self = neighbours_.find(id_);
  if (self == neighbours_.end() || self->second.encryption_key != keys().encryption_key ||
      self->second.mask_key != keys().mask_key)
    throw ProtocolError("SecAggKeyList does not hold this site's own keys as advertised");
  threshold_ = list.threshold;
  std::vector<std::uint32_t> xs;
  for (std::size_t i = 1; i <= neighbours_.size(); ++i) xs.push_back(static_cast<std::uint32_t>(i));
  self_seed_ = random_secret();
  const std::vector<Share> seed_shares = split(self_seed_, static_cast<int>(threshold_), xs);
  const std::vector<Share> key_shares = split(masking_.secret, static_cast<int>(threshold_), xs);
  proto::SecAggShares out;
  std::size_t i = 0;
  for (const auto& [id, keys] : neighbours_) {
    const Share& s = seed_shares[i];
    const Share& k = key_shares[i];
    ++i;
    if (id == id_) {
      seed_shares_[id] = s;
      key_shares_[id] = k;
      continue;
    }
    const Secret32 ecdh = x25519(encryption_.secret, key_of(keys.encryption_key));
    Bytes plain = SharePlaintext{id_, id, s, k}.to_bytes();
    out.shares.push_back({id, seal(share_key(ecdh, ctx_, id_, id), plain,
                                   share_associated_data(ctx_, id_, id))});
    OPENSSL_cleanse(plain.data(), plain.size());
  }
  stage_ = Stage::kShares;
  return out;
}

proto::MaskedUpdate SiteSession::mask(const proto::SecAggShareList& list,
                                      std::span<const float> update, double samples,
                                      double loss) {
  expect(Stage::kShares, "SecAggShareList");
  senders_ = {id_};
  for (const proto::SealedShare& sealed : list.shares) {
    auto n = neighbours_.find(sealed.site_id);
    if (n == neighbours_.end() || sealed.site_id == id_)
      throw ProtocolError("SecAggShareList holds a share from '" + sealed.site_id +
                          "', which is not a neighbour of this site");
    if (!senders_.insert(sealed.site_id).second)
      throw ProtocolError("SecAggShareList holds two shares from '" + sealed.site_id + "'");
    const Secret32 ecdh = x25519(encryption_.secret, key_of(n->second.encryption_key));
    Bytes plain;
    if (!open(share_key(ecdh, ctx_, id_, sealed.site_id), sealed.ciphertext,
              share_associated_data(ctx_, sealed.site_id, id_), plain))
      throw ProtocolError("the share sealed by '" + sealed.site_id +
                          "' does not authenticate (tampered with, or not sealed for this site "
                          "and round)");
    auto content = SharePlaintext::from_bytes(plain);
    OPENSSL_cleanse(plain.data(), plain.size());
    // The x of a share is the recipient's place in the sender's neighbourhood, which this site
    // does not know; the two shares must at least agree on it.
    if (!content || content->sender != sealed.site_id || content->recipient != id_ ||
        content->seed_share.x != content->key_share.x)
      throw ProtocolError("the share from '" + sealed.site_id +
                          "' is malformed or addressed to another site");
    seed_shares_[sealed.site_id] = content->seed_share;
    key_shares_[sealed.site_id] = content->key_share;
  }
  if (senders_.size() < threshold_)
    throw ProtocolError("only " + std::to_string(senders_.size()) +
                        " neighbours (this site included) are left, fewer than the threshold " +
                        std::to_string(threshold_));

  // Client-side L2 clipping: the aggregator cannot check norms under secure aggregation.
  double scale = 1.0;
  if (params_.clip_norm > 0) {
    double sq = 0;
    for (float v : update) sq += static_cast<double>(v) * v;
    const double norm = std::sqrt(sq);
    if (norm > params_.clip_norm) scale = params_.clip_norm / norm;
  }
  std::vector<float> clipped;
  if (scale != 1.0) {
    clipped.resize(update.size());
    for (std::size_t i = 0; i < update.size(); ++i) clipped[i] = static_cast<float>(update[i] * scale);
    update = clipped;
  }

  const std::uint64_t q_weight = quantized_weight(samples, params_);
  const bool wide = params_.modulus_bits == 64;
  const std::size_t word_bytes = wide ? 8 : 4;
  proto::WireTensor t{"masked", wide ? proto::DType::kI64 : proto::DType::kI32,
                      {static_cast<std::int64_t>(update.size() + kExtraWords)},
                      std::vector<std::uint8_t>((update.size() + kExtraWords) * word_bytes)};
  const float loss_value = static_cast<float>(std::isfinite(loss) ? loss / kLossScale : 0.0);
  auto fill = [&](auto words) {
    words[0] = static_cast<std::remove_reference_t<decltype(words[0])>>(q_weight);
    quantize(std::span<const float>(&loss_value, 1), q_weight, params_, random_secret(),
             words.subspan(1, 1));
    quantize(update, q_weight, params_, random_secret(), words.subspan(kExtraWords));
    apply_stream(self_seed_, words, StreamOp::kAdd);
    for (const std::string& other : senders_) {
      if (other == id_) continue;
      const Secret32 ecdh = x25519(masking_.secret, key_of(neighbours_.at(other).mask_key));
      // The larger id adds, the smaller subtracts: the pair's masks cancel in the sum.
      apply_stream(pair_mask_seed(ecdh, ctx_, id_, other), words,
                   id_ > other ? StreamOp::kAdd : StreamOp::kSubtract);
    }
  };
  if (wide) fill(words_of<std::uint64_t>(t));
  else fill(words_of<std::uint32_t>(t));
  stage_ = Stage::kUnmask;
  proto::MaskedUpdate out;
  out.words.push_back(std::move(t));
  return out;
}

proto::UnmaskShares SiteSession::unmask(const proto::UnmaskRequest& request) {
  expect(Stage::kUnmask, "UnmaskRequest");
  stage_ = Stage::kDone;  // whatever happens next, this site answers no second request
  std::set<std::string> survivors, dropped;
  for (const auto& id : request.survivors)
    if (!survivors.insert(id).second)
      throw ProtocolError("UnmaskRequest names survivor '" + id + "' twice");
  for (const auto& id : request.dropped) {
    if (survivors.count(id))
      throw ProtocolError("UnmaskRequest asks for both secrets of '" + id +
                          "' (self-mask seed and mask key): that would reveal its update");
    if (!dropped.insert(id).second)
      throw ProtocolError("UnmaskRequest names dropped site '" + id + "' twice");
  }
  if (!survivors.count(id_))
    throw ProtocolError("UnmaskRequest does not count this site, which sent its masked update, "
                        "among the survivors");
  for (const auto& id : survivors)
    if (!senders_.count(id))
      throw ProtocolError("UnmaskRequest names '" + id + "', whose shares this site does not hold");
  for (const auto& id : dropped)
    if (!senders_.count(id))
      throw ProtocolError("UnmaskRequest names '" + id + "', whose shares this site does not hold");
  if (survivors.size() < threshold_)
    throw ProtocolError("only " + std::to_string(survivors.size()) +
                        " of this site's neighbours survived, fewer than the threshold " +
                        std::to_string(threshold_) + ": the sum would cover too few sites");
  proto::UnmaskShares out;
  for (const auto& id : survivors)
    out.shares.push_back({id, proto::SecretKind::kSelfMaskSeed, seed_shares_.at(id).to_bytes()});
  for (const auto& id : dropped)
    out.shares.push_back({id, proto::SecretKind::kMaskKey, key_shares_.at(id).to_bytes()});
  return out;
}

}  // namespace ppreid::secagg
