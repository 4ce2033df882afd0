#include "protocols/codec.h"

#include <cereal/types/optional.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <set>
#include <string_view>

#include "protocols/chunk_frames.h"
#include "protocols/wire_archive.h"

namespace ppreid::proto {

// ---- DecodeError ---------------------------------------------------------------------------

const char* to_string(DecodeFailure failure) {
  switch (failure) {
    case DecodeFailure::kTruncated: return "truncated";
    case DecodeFailure::kTrailingBytes: return "trailing-bytes";
    case DecodeFailure::kTooLarge: return "too-large";
    case DecodeFailure::kBadMagic: return "bad-magic";
    case DecodeFailure::kUnsupportedVersion: return "unsupported-version";
    case DecodeFailure::kUnknownType: return "unknown-type";
    case DecodeFailure::kInvalidField: return "invalid-field";
    case DecodeFailure::kShapeMismatch: return "shape-mismatch";
    case DecodeFailure::kBadHash: return "bad-hash";
  }
  return "unknown";
}

ErrorCode DecodeError::error_code() const {
  switch (failure_) {
    case DecodeFailure::kTooLarge: return ErrorCode::kTooLarge;
    case DecodeFailure::kUnsupportedVersion: return ErrorCode::kUnsupportedVersion;
    case DecodeFailure::kUnknownType: return ErrorCode::kUnknownType;
    case DecodeFailure::kBadHash: return ErrorCode::kBadHash;
    default: return ErrorCode::kMalformed;
  }
}

// ---- Cereal serialization of the payload fields (tensors travel in the chunk frames) ----------
// Found by cereal through argument-dependent lookup, so they live in ppreid::proto itself.

namespace {

constexpr std::string_view kMagic = "PPRD";
constexpr std::size_t kPrefixBytes = kMagic.size() + sizeof(std::uint16_t);
constexpr std::uint64_t kMaxMetrics = 4096;
constexpr std::uint64_t kMaxTensors = 1 << 20;
constexpr std::size_t kMaxMetricKeyBytes = 128;
constexpr std::size_t kMaxShortTextBytes = 256;

// Scoped enums travel as their uint8 wire value; an unknown value is a DecodeError.
template <typename E>
void enum_field(WireOutputArchive& ar, const char*, E& e, std::uint8_t) {
  ar(static_cast<std::uint8_t>(e));
}
template <typename E>
void enum_field(WireInputArchive& ar, const char* name, E& e, std::uint8_t max_value) {
  WireInputArchive::FieldScope scope(ar, name);
  std::uint8_t v = 0;
  ar(v);
  if (v < 1 || v > max_value)
    ar.fail(DecodeFailure::kUnknownType, "unknown value " + std::to_string(v) + " (known: 1.." +
                                             std::to_string(max_value) + ")");
  e = static_cast<E>(v);
}

// Metrics travel as a count and (key, value) pairs in key order; a repeated key is an error
// rather than silently dropped, and keys out of order are too, so that a message has one encoding.
void metrics_field(WireOutputArchive& ar, const char*, Metrics& metrics) {
  ar(static_cast<std::uint64_t>(metrics.size()));
  for (const auto& [key, value] : metrics) ar(key, value);
}
void metrics_field(WireInputArchive& ar, const char* name, Metrics& metrics) {
  WireInputArchive::FieldScope scope(ar, name);
  std::uint64_t count = 0;
  ar(count);
  ar.check_count(count, kMaxMetrics);
  metrics.clear();
  for (std::uint64_t i = 0; i < count; ++i) {
    std::string key;
    double value = 0;
    ar(cereal::make_nvp("key", key), cereal::make_nvp("value", value));
    if (!metrics.empty() && key <= metrics.rbegin()->first)
      ar.fail(DecodeFailure::kInvalidField,
              "metric '" + printable_for_log(key) +
                  (key == metrics.rbegin()->first
                       ? "' appears twice"
                       : "' follows '" + printable_for_log(metrics.rbegin()->first) +
                             "': metrics must be in ascending key order"));
    metrics.emplace_hint(metrics.end(), std::move(key), value);
  }
}

}  // namespace

template <class Archive>
void serialize(Archive& ar, DatasetSummary& d) {
  ar(cereal::make_nvp("images", d.images), cereal::make_nvp("identities", d.identities),
     cereal::make_nvp("cameras", d.cameras), cereal::make_nvp("deid_method", d.deid_method),
     cereal::make_nvp("epsilon", d.epsilon));
}

template <class Archive>
void serialize(Archive& ar, Hello& h) {
  ar(cereal::make_nvp("site_id", h.site_id), cereal::make_nvp("dataset", h.dataset));
}

template <class Archive>
void serialize(Archive& ar, TrainingSettings& s) {
  ar(cereal::make_nvp("local_epochs", s.local_epochs),
     cereal::make_nvp("learning_rate", s.learning_rate),
     cereal::make_nvp("weight_decay", s.weight_decay), cereal::make_nvp("fedprox_mu", s.fedprox_mu),
     cereal::make_nvp("batch_identities", s.batch_identities),
     cereal::make_nvp("batch_instances", s.batch_instances), cereal::make_nvp("seed", s.seed));
}

template <class Archive>
void serialize(Archive& ar, secagg::Params& p) {
  ar(cereal::make_nvp("clipping_range", p.clipping_range),
     cereal::make_nvp("quantization_range", p.quantization_range),
     cereal::make_nvp("modulus_bits", p.modulus_bits), cereal::make_nvp("max_weight", p.max_weight),
     cereal::make_nvp("clip_norm", p.clip_norm), cereal::make_nvp("sites", p.sites));
}

template <class Archive>
void serialize(Archive& ar, Task& t) {
  ar(cereal::make_nvp("settings", t.settings),
     cereal::make_nvp("secure_aggregation", t.secure_aggregation));
}

template <class Archive>
void serialize(Archive& ar, Update& u) {
  ar(cereal::make_nvp("is_delta", u.is_delta), cereal::make_nvp("sample_count", u.sample_count));
  metrics_field(ar, "metrics", u.metrics);
}

template <class Archive>
void serialize(Archive&, Evaluate&) {}

template <class Archive>
void serialize(Archive& ar, EvalResult& r) {
  ar(cereal::make_nvp("query_count", r.query_count));
  metrics_field(ar, "metrics", r.metrics);
}

template <class Archive>
void serialize(Archive& ar, Heartbeat& h) {
  ar(cereal::make_nvp("status", h.status));
}

template <class Archive>
void serialize(Archive& ar, ErrorMessage& e) {
  enum_field(ar, "code", e.code, kMaxErrorCode);
  ar(cereal::make_nvp("message", e.message));
}

template <class Archive>
void serialize(Archive& ar, Bye& b) {
  ar(cereal::make_nvp("reason", b.reason));
}

template <class Archive>
void serialize(Archive& ar, SecAggKeys& k) {
  ar(cereal::make_nvp("encryption_key", k.encryption_key), cereal::make_nvp("mask_key", k.mask_key));
}

template <class Archive>
void serialize(Archive& ar, NeighbourKeys& k) {
  ar(cereal::make_nvp("site_id", k.site_id), cereal::make_nvp("encryption_key", k.encryption_key),
     cereal::make_nvp("mask_key", k.mask_key));
}

template <class Archive>
void serialize(Archive& ar, SecAggKeyList& l) {
  ar(cereal::make_nvp("threshold", l.threshold), cereal::make_nvp("neighbours", l.neighbours));
}

template <class Archive>
void serialize(Archive& ar, SealedShare& s) {
  ar(cereal::make_nvp("site_id", s.site_id), cereal::make_nvp("ciphertext", s.ciphertext));
}

template <class Archive>
void serialize(Archive& ar, SecAggShares& s) {
  ar(cereal::make_nvp("shares", s.shares));
}

template <class Archive>
void serialize(Archive& ar, SecAggShareList& s) {
  ar(cereal::make_nvp("shares", s.shares));
}

template <class Archive>
void serialize(Archive&, MaskedUpdate&) {}

template <class Archive>
void serialize(Archive& ar, UnmaskRequest& r) {
  ar(cereal::make_nvp("survivors", r.survivors), cereal::make_nvp("dropped", r.dropped));
}

template <class Archive>
void serialize(Archive& ar, RevealedShare& s) {
  ar(cereal::make_nvp("site_id", s.site_id));
  enum_field(ar, "kind", s.kind, kMaxSecretKind);
  ar(cereal::make_nvp("share", s.share));
}

template <class Archive>
void serialize(Archive& ar, UnmaskShares& s) {
  ar(cereal::make_nvp("shares", s.shares));
}

// ---- Field checks shared by encoder and decoder ---------------------------------------------

namespace {

struct FieldProblem {
  std::string field;
  std::string reason;
};

std::optional<FieldProblem> check_id(const char* field, std::string_view id) {
  if (is_valid_id(id)) return std::nullopt;
  return FieldProblem{field, "'" + printable_for_log(id) + "' is not an id (1.." +
                                 std::to_string(kMaxIdBytes) + " characters of A-Z a-z 0-9 . _ -)"};
}

std::optional<FieldProblem> check_text(const char* field, const std::string& text,
                                       std::size_t max_bytes) {
  if (is_printable_text(text, max_bytes)) return std::nullopt;
  return FieldProblem{field, "must be printable ASCII of at most " + std::to_string(max_bytes) +
                                 " bytes (got " + std::to_string(text.size()) + " bytes)"};
}

std::optional<FieldProblem> check_rate(const char* field, double value) {
  if (std::isfinite(value) && value >= 0) return std::nullopt;
  return FieldProblem{field, "must be finite and >= 0, not " + std::to_string(value)};
}

std::optional<FieldProblem> check_metrics(const char* field, const Metrics& metrics) {
  if (metrics.size() > kMaxMetrics)
    return FieldProblem{field, std::to_string(metrics.size()) + " metrics, more than " +
                                   std::to_string(kMaxMetrics)};
  for (const auto& [key, value] : metrics)
    if (key.empty() || !is_printable_text(key, kMaxMetricKeyBytes))
      return FieldProblem{field, "key '" + printable_for_log(key) + "' must be 1.." +
                                     std::to_string(kMaxMetricKeyBytes) +
                                     " printable ASCII characters"};
  return std::nullopt;
}

template <typename... Checks>
std::optional<FieldProblem> first_of(Checks&&... checks) {
  std::optional<FieldProblem> out;
  ((out = out ? out : std::optional<FieldProblem>(checks)), ...);
  return out;
}

std::optional<FieldProblem> check_payload(const EnvelopeRef& e) {
  struct Visitor {
    const EnvelopeRef& e;
    std::optional<FieldProblem> operator()(const Hello& h) const {
      if (auto p = check_id("site_id", h.site_id)) return p;
      if (h.site_id != e.sender_id)
        return FieldProblem{"site_id", "'" + h.site_id + "' differs from the sender id '" +
                                           std::string(e.sender_id) + "'"};
      const DatasetSummary& d = h.dataset;
      if (auto p = check_text("dataset.deid_method", d.deid_method, kMaxShortTextBytes)) return p;
      if (d.epsilon && !(std::isfinite(*d.epsilon) && *d.epsilon > 0))
        return FieldProblem{"dataset.epsilon",
                            "must be finite and > 0, not " + std::to_string(*d.epsilon)};
      return std::nullopt;
    }
    std::optional<FieldProblem> operator()(const Task& t) const {
      if (t.secure_aggregation) {
        const secagg::Params& p = *t.secure_aggregation;
        if (!(std::isfinite(p.clipping_range) && p.clipping_range > 0) ||
            !(std::isfinite(p.max_weight) && p.max_weight > 0) ||
            !(std::isfinite(p.clip_norm) && p.clip_norm >= 0) || p.quantization_range < 1 ||
            p.sites < 2)
          return FieldProblem{"secure_aggregation",
                              "clipping_range, max_weight and quantization_range must be finite "
                              "and > 0, clip_norm finite and >= 0, sites >= 2"};
      }
      const TrainingSettings& s = t.settings;
      if (s.local_epochs < 1) return FieldProblem{"settings.local_epochs", "must be >= 1"};
      if (s.batch_identities < 1 || s.batch_instances < 1)
        return FieldProblem{"settings.batch_identities", "P and K must be >= 1"};
      return first_of(check_rate("settings.learning_rate", s.learning_rate),
                      check_rate("settings.weight_decay", s.weight_decay),
                      check_rate("settings.fedprox_mu", s.fedprox_mu));
    }
    std::optional<FieldProblem> operator()(const Update& u) const {
      return check_metrics("metrics", u.metrics);
    }
    std::optional<FieldProblem> operator()(const Evaluate&) const { return std::nullopt; }
    std::optional<FieldProblem> operator()(const EvalResult& r) const {
      return check_metrics("metrics", r.metrics);
    }
    std::optional<FieldProblem> operator()(const Heartbeat& h) const {
      return check_text("status", h.status, kMaxShortTextBytes);
    }
    std::optional<FieldProblem> operator()(const ErrorMessage& m) const {
      return check_text("message", m.message, kMaxTextBytes);
    }
    std::optional<FieldProblem> operator()(const Bye& b) const {
      return check_text("reason", b.reason, kMaxTextBytes);
    }
    std::optional<FieldProblem> operator()(const SecAggKeys& k) const {
      return first_of(check_key("encryption_key", k.encryption_key),
                      check_key("mask_key", k.mask_key));
    }
    std::optional<FieldProblem> operator()(const SecAggKeyList& l) const {
      if (l.threshold < 1) return FieldProblem{"threshold", "must be >= 1"};
      if (l.neighbours.size() > kMaxSecAggSites)
        return FieldProblem{"neighbours", "more than " + std::to_string(kMaxSecAggSites)};
      for (const NeighbourKeys& n : l.neighbours)
        if (auto p = first_of(check_id("neighbours.site_id", n.site_id),
                              check_key("neighbours.encryption_key", n.encryption_key),
                              check_key("neighbours.mask_key", n.mask_key)))
          return p;
      return std::nullopt;
    }
    std::optional<FieldProblem> operator()(const SecAggShares& s) const { return sealed(s.shares); }
    std::optional<FieldProblem> operator()(const SecAggShareList& s) const {
      return sealed(s.shares);
    }
    // The words' count, dtype and size depend on the round; the aggregator's secure-aggregation
    // session checks them (the manifest is not decoded yet when the fields are checked).
    std::optional<FieldProblem> operator()(const MaskedUpdate&) const { return std::nullopt; }
    std::optional<FieldProblem> operator()(const UnmaskRequest& r) const {
      if (r.survivors.size() + r.dropped.size() > kMaxSecAggSites)
        return FieldProblem{"survivors", "more than " + std::to_string(kMaxSecAggSites) + " sites"};
      for (const auto& id : r.survivors)
        if (auto p = check_id("survivors", id)) return p;
      for (const auto& id : r.dropped)
        if (auto p = check_id("dropped", id)) return p;
      return std::nullopt;
    }
    std::optional<FieldProblem> operator()(const UnmaskShares& u) const {
      if (u.shares.size() > kMaxSecAggSites)
        return FieldProblem{"shares", "more than " + std::to_string(kMaxSecAggSites)};
      for (const RevealedShare& s : u.shares) {
        if (auto p = check_id("shares.site_id", s.site_id)) return p;
        if (s.share.size() > kMaxSealedShareBytes)
          return FieldProblem{"shares.share", std::to_string(s.share.size()) + " bytes, more than " +
                                                  std::to_string(kMaxSealedShareBytes)};
      }
      return std::nullopt;
    }
    static std::optional<FieldProblem> check_key(const char* field,
                                                 const std::vector<std::uint8_t>& key) {
      if (key.size() == kX25519KeyBytes) return std::nullopt;
      return FieldProblem{field, "must be a 32-byte X25519 public key, not " +
                                     std::to_string(key.size()) + " bytes"};
    }
    static std::optional<FieldProblem> sealed(const std::vector<SealedShare>& shares) {
      if (shares.size() > kMaxSecAggSites)
        return FieldProblem{"shares", "more than " + std::to_string(kMaxSecAggSites)};
      for (const SealedShare& s : shares) {
        if (auto p = check_id("shares.site_id", s.site_id)) return p;
        if (s.ciphertext.empty() || s.ciphertext.size() > kMaxSealedShareBytes)
          return FieldProblem{"shares.ciphertext",
                              std::to_string(s.ciphertext.size()) + " bytes; 1.." +
                                  std::to_string(kMaxSealedShareBytes) + " expected"};
      }
      return std::nullopt;
    }
  };
  if (auto p = check_id("federation_id", e.federation_id)) return p;
  if (auto p = check_id("sender_id", e.sender_id)) return p;
  return std::visit(Visitor{e}, e.payload);
}

// Payload alternative for a wire type (1-based, already range-checked).
template <std::size_t I = 0>
Payload payload_for(std::uint8_t type) {
  if constexpr (I + 1 < std::variant_size_v<Payload>) {
    if (type != I + 1) return payload_for<I + 1>(type);
  }
  return Payload(std::in_place_index<I>);
}

std::string size_text(std::uint64_t bytes) { return std::to_string(bytes) + " bytes"; }

}  // namespace

void validate(const CodecOptions& o) {
  if (o.chunk_bytes == 0) throw Error("codec option chunk_bytes must be > 0");
  if (o.zero_copy_min_bytes == 0) throw Error("codec option zero_copy_min_bytes must be > 0");
  if (o.max_message_bytes == 0) throw Error("codec option max_message_bytes must be > 0");
  if (o.max_header_bytes < kPrefixBytes + 64)
    throw Error("codec option max_header_bytes must be at least 70 bytes");
  if (o.max_header_bytes > o.max_message_bytes)
    throw Error("codec option max_header_bytes (" + std::to_string(o.max_header_bytes) +
                ") must not exceed max_message_bytes (" + std::to_string(o.max_message_bytes) +
                ")");
}

// ---- encode ---------------------------------------------------------------------------------

std::vector<zmq::message_t> encode(const Envelope& envelope, const CodecOptions& options) {
  return encode(EnvelopeRef{envelope.version, envelope.federation_id, envelope.round,
                            envelope.sender_id, envelope.payload},
                options);
}

std::vector<zmq::message_t> encode(const EnvelopeRef& envelope, const CodecOptions& options) {
  return encode_zero_copy(envelope, nullptr, options);
}

std::vector<zmq::message_t> encode_zero_copy(const EnvelopeRef& envelope,
                                             std::shared_ptr<const void> owner,
                                             const CodecOptions& options) {
  validate(options);
  const MessageType type = type_of(envelope.payload);
  const char* type_name = to_string(type);
  if (auto p = check_payload(envelope))
    throw Error(std::string("cannot encode ") + type_name + ": field '" + p->field + "' " +
                p->reason);
  static const NamedWireTensors kNone;
  const NamedWireTensors* tensors_ptr = tensors_of(envelope.payload);
  const NamedWireTensors& tensors = tensors_ptr ? *tensors_ptr : kNone;
  try {
    validate_tensors(tensors);
  } catch (const Error& e) {
    throw Error(std::string("cannot encode ") + type_name + ": " + e.what());
  }
  std::uint64_t payload_bytes = 0;
  for (const WireTensor& t : tensors) payload_bytes += t.data.size();
  if (payload_bytes > options.max_message_bytes)
    throw Error(std::string("cannot encode ") + type_name + ": the tensors hold " +
                size_text(payload_bytes) + ", over max_message_bytes (" +
                size_text(options.max_message_bytes) + ")");

  // Chunk frames (copied, or pointing into the tensors when there is an owner), hashed as they
  // are made.
  std::vector<zmq::message_t> frames;
  frames.reserve(2 + (payload_bytes + options.chunk_bytes - 1) / options.chunk_bytes);
  frames.emplace_back();  // the header, written last
  PayloadHasher hasher(tensors.size());
  for (const WireTensor& t : tensors) hasher.add_manifest_entry(t.name, t.dtype, t.shape);
  append_chunk_frames(tensors, options, owner, hasher, frames);
  const std::uint64_t chunk_count = frames.size() - 1;
  const Digest digest = hasher.finish();

  std::string header(kMagic);
  const std::uint16_t version = envelope.version;
  header.append(reinterpret_cast<const char*>(&version), sizeof version);
  {
    WireOutputArchive ar(header);
    ar(static_cast<std::uint8_t>(type), std::string(envelope.federation_id), envelope.round,
       std::string(envelope.sender_id));
    std::visit([&](const auto& payload) { ar(payload); }, envelope.payload);
    ar(static_cast<std::uint64_t>(tensors.size()));
    for (const WireTensor& t : tensors) {
      ar(t.name, static_cast<std::uint8_t>(t.dtype), static_cast<std::uint64_t>(t.shape.size()));
      for (std::int64_t d : t.shape) ar(d);
    }
    ar(payload_bytes, chunk_count);
    ar.write(digest.data(), digest.size());
  }
  if (header.size() > options.max_header_bytes)
    throw Error(std::string("cannot encode ") + type_name + ": the header takes " +
                size_text(header.size()) + ", over max_header_bytes (" +
                size_text(options.max_header_bytes) + ")");
  if (header.size() + payload_bytes > options.max_message_bytes)
    throw Error(std::string("cannot encode ") + type_name + ": the message takes " +
                size_text(header.size() + payload_bytes) + ", over max_message_bytes (" +
                size_text(options.max_message_bytes) + ")");
  frames[0] = zmq::message_t(header.data(), header.size());
  return frames;
}

std::vector<FrameView> frame_views(std::span<const zmq::message_t> frames) {
  std::vector<FrameView> out;
  out.reserve(frames.size());
  for (const zmq::message_t& f : frames)
    out.emplace_back(static_cast<const std::uint8_t*>(f.data()), f.size());
  return out;
}

// ---- decode ---------------------------------------------------------------------------------

namespace {

struct ManifestEntry {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<std::int64_t> shape;
  std::uint64_t bytes = 0;
};

// Reads the tensor manifest, checking every count against its bound and the frame before
// anything is allocated, and every shape's byte count against the message limit.
std::vector<ManifestEntry> read_manifest(WireInputArchive& ar, std::uint64_t max_payload) {
  WireInputArchive::FieldScope scope(ar, "tensors");
  std::uint64_t count = 0;
  ar(count);
  ar.check_count(count, kMaxTensors);
  std::vector<ManifestEntry> entries(count);
  std::set<std::string_view> names;
  std::uint64_t total = 0;
  for (std::uint64_t i = 0; i < count; ++i) {
    ManifestEntry& e = entries[i];
    std::uint8_t dtype = 0;
    std::uint64_t ndim = 0;
    ar(cereal::make_nvp("name", e.name), cereal::make_nvp("dtype", dtype),
       cereal::make_nvp("ndim", ndim));
    const std::string which = "tensor #" + std::to_string(i) + " '" + printable_for_log(e.name) + "'";
    if (e.name.empty() || !is_printable_text(e.name, kMaxTensorNameBytes))
      ar.fail(DecodeFailure::kInvalidField, which + ": a name must be 1.." +
                                                std::to_string(kMaxTensorNameBytes) +
                                                " printable ASCII characters");
    if (!names.insert(e.name).second)
      ar.fail(DecodeFailure::kInvalidField, which + ": the name appears twice");
    if (!is_valid_dtype(dtype))
      ar.fail(DecodeFailure::kUnknownType, which + ": unknown dtype " + std::to_string(dtype));
    e.dtype = static_cast<DType>(dtype);
    if (ndim > kMaxTensorDims)
      ar.fail(DecodeFailure::kTooLarge, which + ": " + std::to_string(ndim) +
                                            " dimensions, more than " +
                                            std::to_string(kMaxTensorDims));
    ar.check_count(ndim * sizeof(std::int64_t));
    e.shape.resize(ndim);
    for (std::int64_t& d : e.shape) ar(d);
    if (!tensor_byte_count(e.shape, e.dtype, max_payload - total, e.bytes)) {
      std::string dims;
      for (std::int64_t d : e.shape) dims += (dims.empty() ? "" : ", ") + std::to_string(d);
      ar.fail(DecodeFailure::kShapeMismatch,
              which + ": shape [" + dims + "] of " + to_string(e.dtype) +
                  " is negative or does not fit in what is left of the message (" +
                  size_text(max_payload - total) + ")");
    }
    total += e.bytes;
  }
  return entries;
}

}  // namespace

Decoded decode(std::span<const FrameView> frames, const CodecOptions& options) {
  validate(options);
  if (frames.empty()) throw DecodeError(DecodeFailure::kTruncated, "no frames");
  std::uint64_t wire_bytes = 0;
  for (const FrameView& f : frames) wire_bytes += f.size();
  if (wire_bytes > options.max_message_bytes)
    throw DecodeError(DecodeFailure::kTooLarge,
                      "the message takes " + size_text(wire_bytes) +
                          ", over max_message_bytes (" + size_text(options.max_message_bytes) +
                          ")");
  const FrameView header = frames[0];
  if (header.size() > options.max_header_bytes)
    throw DecodeError(DecodeFailure::kTooLarge,
                      "the header frame takes " + size_text(header.size()) +
                          ", over max_header_bytes (" + size_text(options.max_header_bytes) + ")");
  if (header.size() < kPrefixBytes ||
      std::memcmp(header.data(), kMagic.data(), kMagic.size()) != 0)
    throw DecodeError(DecodeFailure::kBadMagic,
                      "the header frame (" + size_text(header.size()) +
                          ") does not start with \"PPRD\" and a version: not a ppreid message");
  std::uint16_t version = 0;
  std::memcpy(&version, header.data() + kMagic.size(), sizeof version);
  if (version != kProtocolVersion)
    throw DecodeError(DecodeFailure::kUnsupportedVersion,
                      "protocol version " + std::to_string(version) + ", this build speaks " +
                          std::to_string(kProtocolVersion) + " only");

  Decoded out;
  Envelope& e = out.envelope;
  e.version = version;
  WireInputArchive ar(header.subspan(kPrefixBytes), "header");
  std::uint8_t type = 0;
  ar(cereal::make_nvp("type", type));
  if (type < 1 || type > kMaxMessageType)
    ar.fail(DecodeFailure::kUnknownType, "unknown message type " + std::to_string(type) +
                                             " (this build knows 1.." +
                                             std::to_string(kMaxMessageType) + ")");
  e.payload = payload_for(type);
  const std::string type_name = to_string(e.type());
  ar.set_what(type_name + " header");
  ar(cereal::make_nvp("federation_id", e.federation_id), cereal::make_nvp("round", e.round),
     cereal::make_nvp("sender_id", e.sender_id));
  std::visit([&](auto& payload) { ar(cereal::make_nvp("payload", payload)); }, e.payload);

  const std::uint64_t max_payload = options.max_message_bytes - header.size();
  std::vector<ManifestEntry> manifest = read_manifest(ar, max_payload);
  std::uint64_t payload_bytes = 0, chunk_count = 0;
  ar(cereal::make_nvp("payload_bytes", payload_bytes),
     cereal::make_nvp("chunk_count", chunk_count));
  Digest claimed{};
  {
    WireInputArchive::FieldScope scope(ar, "sha256");
    ar.read(claimed.data(), claimed.size());
  }
  if (ar.remaining() != 0)
    throw DecodeError(DecodeFailure::kTrailingBytes,
                      type_name + " header: " + size_text(ar.remaining()) +
                          " left over after the last field (the header frame has " +
                          size_text(header.size()) + ")");
  if (auto p = check_payload(
          EnvelopeRef{e.version, e.federation_id, e.round, e.sender_id, e.payload}))
    throw DecodeError(DecodeFailure::kInvalidField,
                      type_name + " header, field '" + p->field + "': " + p->reason);

  NamedWireTensors* tensors = tensors_of(e.payload);
  if (!tensors && !manifest.empty())
    throw DecodeError(DecodeFailure::kInvalidField,
                      type_name + " carries no tensors, but the header lists " +
                          std::to_string(manifest.size()));
  std::uint64_t manifest_bytes = 0;
  for (const ManifestEntry& m : manifest) manifest_bytes += m.bytes;
  if (manifest_bytes != payload_bytes)
    throw DecodeError(DecodeFailure::kShapeMismatch,
                      type_name + ": the tensor shapes need " + size_text(manifest_bytes) +
                          " but payload_bytes says " + size_text(payload_bytes));
  const std::uint64_t chunk_frames = frames.size() - 1;
  if (chunk_count != chunk_frames)
    throw DecodeError(chunk_frames < chunk_count ? DecodeFailure::kTruncated
                                                 : DecodeFailure::kTrailingBytes,
                      type_name + ": the header announces " + std::to_string(chunk_count) +
                          " chunk frames, the message has " + std::to_string(chunk_frames));
  std::uint64_t chunk_bytes = 0;
  for (std::size_t i = 1; i < frames.size(); ++i) {
    if (frames[i].empty())
      throw DecodeError(DecodeFailure::kInvalidField,
                        type_name + ": chunk frame " + std::to_string(i) + " is empty");
    chunk_bytes += frames[i].size();
  }
  if (chunk_bytes != payload_bytes)
    throw DecodeError(chunk_bytes < payload_bytes ? DecodeFailure::kTruncated
                                                  : DecodeFailure::kTrailingBytes,
                      type_name + ": the chunk frames hold " + size_text(chunk_bytes) +
                          ", the tensors need " + size_text(payload_bytes));

  // Everything is consistent with what arrived: allocate exactly the bytes present, copy, hash.
  PayloadHasher hasher(manifest.size());
  for (const ManifestEntry& m : manifest) hasher.add_manifest_entry(m.name, m.dtype, m.shape);
  if (tensors) {
    tensors->resize(manifest.size());
    std::vector<std::uint64_t> byte_counts(manifest.size());
    for (std::size_t i = 0; i < manifest.size(); ++i) {
      WireTensor& t = (*tensors)[i];
      t.name = std::move(manifest[i].name);
      t.dtype = manifest[i].dtype;
      t.shape = std::move(manifest[i].shape);
      t.data.reserve(manifest[i].bytes);
      byte_counts[i] = manifest[i].bytes;
    }
    read_chunk_frames(frames.subspan(1), byte_counts, *tensors, hasher);
  }
  out.payload_sha256 = hasher.finish();
  if (out.payload_sha256 != claimed)
    throw DecodeError(DecodeFailure::kBadHash,
                      type_name + ": the payload (" + std::to_string(manifest.size()) +
                          " tensors, " + size_text(payload_bytes) + ") hashes to SHA-256 " +
                          to_hex(out.payload_sha256) + ", the header says " + to_hex(claimed));
  out.wire_bytes = wire_bytes;
  return out;
}

}  // namespace ppreid::proto
