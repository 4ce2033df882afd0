#include "protocols/message.h"

#include <utility>

namespace ppreid::proto {

static_assert(std::variant_size_v<Payload> == kMaxMessageType,
              "every MessageType needs its payload alternative, in wire order");

const char* to_string(MessageType type) {
  switch (type) {
    case MessageType::kHello: return "Hello";
    case MessageType::kTask: return "Task";
    case MessageType::kUpdate: return "Update";
    case MessageType::kEvaluate: return "Evaluate";
    case MessageType::kEvalResult: return "EvalResult";
    case MessageType::kHeartbeat: return "Heartbeat";
    case MessageType::kError: return "Error";
    case MessageType::kBye: return "Bye";
    case MessageType::kSecAggKeys: return "SecAggKeys";
    case MessageType::kSecAggKeyList: return "SecAggKeyList";
    case MessageType::kSecAggShares: return "SecAggShares";
    case MessageType::kSecAggShareList: return "SecAggShareList";
    case MessageType::kMaskedUpdate: return "MaskedUpdate";
    case MessageType::kUnmaskRequest: return "UnmaskRequest";
    case MessageType::kUnmaskShares: return "UnmaskShares";
  }
  return "unknown";
}

const char* to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::kMalformed: return "malformed";
    case ErrorCode::kUnsupportedVersion: return "unsupported-version";
    case ErrorCode::kUnknownType: return "unknown-type";
    case ErrorCode::kBadHash: return "bad-hash";
    case ErrorCode::kTooLarge: return "too-large";
    case ErrorCode::kUnauthorized: return "unauthorized";
    case ErrorCode::kWrongFederation: return "wrong-federation";
    case ErrorCode::kRejected: return "rejected";
    case ErrorCode::kUnexpected: return "unexpected";
    case ErrorCode::kInternal: return "internal";
  }
  return "unknown";
}

const NamedWireTensors* tensors_of(const Payload& payload) {
  if (const auto* t = std::get_if<Task>(&payload)) return &t->weights;
  if (const auto* u = std::get_if<Update>(&payload)) return &u->weights;
  if (const auto* e = std::get_if<Evaluate>(&payload)) return &e->weights;
  if (const auto* m = std::get_if<MaskedUpdate>(&payload)) return &m->words;
  return nullptr;
}

NamedWireTensors* tensors_of(Payload& payload) {
  return const_cast<NamedWireTensors*>(tensors_of(std::as_const(payload)));
}

}  // namespace ppreid::proto
