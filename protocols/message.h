#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "protocols/secagg/params.h"
#include "protocols/tensor_codec.h"
#include "protocols/text.h"

namespace ppreid::proto {

// The protocol spoken by this build. A decoder rejects every other version.
inline constexpr std::uint16_t kProtocolVersion = 1;

// Message types. The numbers are the wire values: never renumber, only append.
enum class MessageType : std::uint8_t {
  kHello = 1,       // site -> aggregator: who I am, what I train on
  kTask = 2,        // aggregator -> site: train on these global weights
  kUpdate = 3,      // site -> aggregator: my new weights (or delta) for the round
  kEvaluate = 4,    // aggregator -> site: evaluate these weights on your query/gallery
  kEvalResult = 5,  // site -> aggregator: the metrics
  kHeartbeat = 6,   // either way: still alive (a site sends them while it trains)
  kError = 7,       // either way: a message was refused, and why
  kBye = 8,         // either way: leaving
  // Secure aggregation (docs/PROTOCOL.md), in the order of a round's stages:
  kSecAggKeys = 9,       // site -> aggregator: my two public keys for the round
  kSecAggKeyList = 10,   // aggregator -> site: your neighbours' keys and the threshold
  kSecAggShares = 11,    // site -> aggregator: my secrets' shares, sealed for each neighbour
  kSecAggShareList = 12, // aggregator -> site: the sealed shares addressed to you
  kMaskedUpdate = 13,    // site -> aggregator: my masked, quantized update
  kUnmaskRequest = 14,   // aggregator -> site: who survived and who dropped
  kUnmaskShares = 15,    // site -> aggregator: the shares that unmask the sum
};
inline constexpr std::uint8_t kMaxMessageType = 15;

const char* to_string(MessageType type);  // "Hello", "Task", ...

// Named metrics (loss, mAP, rank-1, seconds...): only numbers ever leave a site.
using Metrics = std::map<std::string, double>;

// What a site trains on, in counts only: no image or identity ever leaves a site.
struct DatasetSummary {
  std::uint64_t images = 0;
  std::uint64_t identities = 0;
  std::uint64_t cameras = 0;
  std::string deid_method;        // "pis", "dp", "blur", "none"...
  std::optional<double> epsilon;  // image-DP budget, when the method has one

  bool operator==(const DatasetSummary&) const = default;
};

struct Hello {
  std::string site_id;
  DatasetSummary dataset;

  bool operator==(const Hello&) const = default;
};

// How a site trains its round.
struct TrainingSettings {
  std::uint32_t local_epochs = 1;
  double learning_rate = 3.5e-4;
  double weight_decay = 5e-4;
  double fedprox_mu = 0.0;  // 0: plain FedAvg; > 0: proximal term mu/2 ||w - w_global||^2
  std::uint32_t batch_identities = 16;  // P of the P x K sampler
  std::uint32_t batch_instances = 4;    // K
  std::uint64_t seed = 0;

  bool operator==(const TrainingSettings&) const = default;
};

// The round is Envelope::round (one place only, so it cannot disagree with itself).
struct Task {
  NamedWireTensors weights;  // the shared part (backbone + BNNeck) of the global model
  TrainingSettings settings;
  // Set: answer with SecAggKeys instead of an Update, and take part in secure aggregation.
  std::optional<secagg::Params> secure_aggregation;

  bool operator==(const Task&) const = default;
};

struct Update {
  NamedWireTensors weights;  // the shared part after local training...
  bool is_delta = false;     // ...or, when set, local minus global
  std::uint64_t sample_count = 0;
  Metrics metrics;

  bool operator==(const Update&) const = default;
};

struct Evaluate {
  NamedWireTensors weights;  // empty: evaluate the weights of the round's Task

  bool operator==(const Evaluate&) const = default;
};

struct EvalResult {
  std::uint64_t query_count = 0;
  Metrics metrics;

  bool operator==(const EvalResult&) const = default;
};

struct Heartbeat {
  std::string status;  // "training", "idle"...; free text, for logs

  bool operator==(const Heartbeat&) const = default;
};

// ---- secure aggregation (one round; every key is fresh for the round) ----------------------

inline constexpr std::size_t kX25519KeyBytes = 32;
inline constexpr std::size_t kMaxSealedShareBytes = 256;
inline constexpr std::uint64_t kMaxSecAggSites = 100000;

struct SecAggKeys {
  std::vector<std::uint8_t> encryption_key;  // X25519 public key for sealing shares
  std::vector<std::uint8_t> mask_key;        // X25519 public key for pairwise masks

  bool operator==(const SecAggKeys&) const = default;
};

struct NeighbourKeys {
  std::string site_id;
  std::vector<std::uint8_t> encryption_key;
  std::vector<std::uint8_t> mask_key;

  bool operator==(const NeighbourKeys&) const = default;
};

struct SecAggKeyList {
  std::uint32_t threshold = 0;           // shares needed to rebuild a secret
  std::vector<NeighbourKeys> neighbours;  // the recipient's neighbourhood, itself included

  bool operator==(const SecAggKeyList&) const = default;
};

// A share sealed (AES-256-GCM) for one site: in SecAggShares `site_id` is the recipient, in
// SecAggShareList the sender.
struct SealedShare {
  std::string site_id;
  std::vector<std::uint8_t> ciphertext;

  bool operator==(const SealedShare&) const = default;
};

struct SecAggShares {
  std::vector<SealedShare> shares;

  bool operator==(const SecAggShares&) const = default;
};

struct SecAggShareList {
  std::vector<SealedShare> shares;

  bool operator==(const SecAggShareList&) const = default;
};

// One tensor "masked": int32 (modulus 2^32) or int64 (2^64) words, [2 + model values].
struct MaskedUpdate {
  NamedWireTensors words;

  bool operator==(const MaskedUpdate&) const = default;
};

struct UnmaskRequest {
  std::vector<std::string> survivors;  // send shares of their self-mask seeds
  std::vector<std::string> dropped;    // send shares of their mask keys

  bool operator==(const UnmaskRequest&) const = default;
};

// Wire values: never renumber, only append.
enum class SecretKind : std::uint8_t {
  kSelfMaskSeed = 1,  // a survivor's: removes its self mask
  kMaskKey = 2,       // a dropped site's: rebuilds its pairwise masks with the survivors
};
inline constexpr std::uint8_t kMaxSecretKind = 2;

struct RevealedShare {
  std::string site_id;  // whose secret
  SecretKind kind = SecretKind::kSelfMaskSeed;
  std::vector<std::uint8_t> share;

  bool operator==(const RevealedShare&) const = default;
};

struct UnmaskShares {
  std::vector<RevealedShare> shares;

  bool operator==(const UnmaskShares&) const = default;
};

// Why a message was refused. Wire values: never renumber, only append.
enum class ErrorCode : std::uint8_t {
  kMalformed = 1,           // truncated, trailing bytes, bad field, shape/byte-count mismatch
  kUnsupportedVersion = 2,  // another protocol version
  kUnknownType = 3,         // a message type this build does not know
  kBadHash = 4,             // payload SHA-256 mismatch
  kTooLarge = 5,            // over the receiver's size limits
  kUnauthorized = 6,        // sender id is not the authenticated site id
  kWrongFederation = 7,     // federation id of another federation
  kRejected = 8,            // well-formed but refused (stale round, NaN, norm bound, duplicate)
  kUnexpected = 9,          // a message that makes no sense in this state
  kInternal = 10,           // the receiver failed
};
inline constexpr std::uint8_t kMaxErrorCode = 10;

const char* to_string(ErrorCode code);  // "malformed", "bad-hash", ...

struct ErrorMessage {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;

  bool operator==(const ErrorMessage&) const = default;
};

struct Bye {
  std::string reason;

  bool operator==(const Bye&) const = default;
};

// The variant's alternatives are in MessageType order (index + 1 == wire value).
using Payload =
    std::variant<Hello, Task, Update, Evaluate, EvalResult, Heartbeat, ErrorMessage, Bye,
                 SecAggKeys, SecAggKeyList, SecAggShares, SecAggShareList, MaskedUpdate,
                 UnmaskRequest, UnmaskShares>;

inline MessageType type_of(const Payload& payload) {
  return static_cast<MessageType>(payload.index() + 1);
}

// What travels: a versioned header and one payload. The message type is the payload's.
struct Envelope {
  std::uint16_t version = kProtocolVersion;
  std::string federation_id;
  std::uint64_t round = 0;
  std::string sender_id;
  Payload payload;

  MessageType type() const { return type_of(payload); }
  bool operator==(const Envelope&) const = default;
};

// The model tensors a payload carries (Task, Update, Evaluate), or nullptr.
const NamedWireTensors* tensors_of(const Payload& payload);
NamedWireTensors* tensors_of(Payload& payload);

}  // namespace ppreid::proto
