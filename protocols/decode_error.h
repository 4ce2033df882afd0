#pragma once

#include <cstdint>
#include <string>

#include "core/util/error.h"
#include "protocols/message.h"

namespace ppreid::proto {

// What was wrong with a received message.
enum class DecodeFailure : std::uint8_t {
  kTruncated,           // a frame or field ends before its declared length
  kTrailingBytes,       // bytes left over after the last field or chunk
  kTooLarge,            // over max_message_bytes / max_header_bytes, or a count over its bound
  kBadMagic,            // not a ppreid message at all
  kUnsupportedVersion,  // another protocol version
  kUnknownType,         // a message type or enum value this build does not know
  kInvalidField,        // a field with a value that is not allowed (id charset, bool 7...)
  kShapeMismatch,       // tensor shapes, byte counts and chunk frames disagree
  kBadHash,             // the payload does not hash to the SHA-256 in the header
};

const char* to_string(DecodeFailure failure);

// The one exception decode() throws for bad input; the message names the message type (when it
// was read), the field and the sizes involved.
class DecodeError : public Error {
 public:
  DecodeError(DecodeFailure failure, const std::string& message)
      : Error("cannot decode message: " + message), failure_(failure) {}
  DecodeFailure failure() const { return failure_; }
  // The code of the Error reply a receiver sends back.
  ErrorCode error_code() const;

 private:
  DecodeFailure failure_;
};

}  // namespace ppreid::proto
