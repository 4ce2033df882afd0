#pragma once

#include <zmq.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "protocols/decode_error.h"
#include "protocols/message.h"
#include "protocols/tensor_codec.h"

namespace ppreid::proto {

// Wire layout of one message (one ZeroMQ multipart message):
//   frame 0      header: "PPRD" | protocol version (uint16 LE) | Cereal archive (wire_archive.h)
//                of {type, federation id, round, sender id, the payload's fields except
//                tensors, tensor manifest (name, dtype, shape), payload bytes, chunk count,
//                SHA-256 of the payload}
//   frames 1..n  the raw little-endian bytes of all tensors, concatenated in manifest order and
//                cut into chunks of at most chunk_bytes (no chunk frames when there are no
//                tensors)
struct CodecOptions {
  // A whole message (all frames) above this is refused; the transport also sets ZMQ_MAXMSGSIZE
  // to it, so libzmq drops a connection that sends a larger single frame before allocating it.
  std::size_t max_message_bytes = std::size_t{512} << 20;
  // The header frame (ids, metrics, tensor manifest) above this is refused.
  std::size_t max_header_bytes = std::size_t{4} << 20;
  // Sender side: size of the tensor chunk frames. 1 MiB measured fastest for a ResNet-50 update
  // over CURVE (bench_transport's Loopback rows: 256 KiB frames pay libzmq's per-frame cost more
  // often, 2 and 4 MiB ones make its copies of each frame for encryption miss the caches).
  std::size_t chunk_bytes = std::size_t{1} << 20;
  // Sender side, encode_zero_copy: a tensor of at least this many bytes travels in frames that
  // point into its memory; the smaller ones between two such are copied into shared frames (a
  // frame per BatchNorm vector would cost more than the copy).
  std::size_t zero_copy_min_bytes = std::size_t{64} << 10;
};

// Checks the options (chunk_bytes and zero_copy_min_bytes > 0, limits > 0, header limit <=
// message limit); throws
// ppreid::Error naming the option.
void validate(const CodecOptions& options);

// Encodes `envelope` into frames. Throws ppreid::Error (not DecodeError) when the envelope itself
// is invalid (ids, tensor sizes, texts) or its encoding exceeds the options' limits: the sender
// refuses what a receiver with the same limits would refuse. envelope.version is written as it
// is (kProtocolVersion unless a test wants another one).
std::vector<zmq::message_t> encode(const Envelope& envelope, const CodecOptions& options = {});

// The same from the envelope's fields by reference, so that a large payload (the global model of
// a Task) is encoded without being copied into an Envelope first.
struct EnvelopeRef {
  std::uint16_t version = kProtocolVersion;
  std::string_view federation_id;
  std::uint64_t round = 0;
  std::string_view sender_id;
  const Payload& payload;
};
std::vector<zmq::message_t> encode(const EnvelopeRef& envelope, const CodecOptions& options = {});

// The same without copying the bytes of large tensors (options.zero_copy_min_bytes): their
// chunk frames point into the tensors' memory, and each holds a reference to `owner` until libzmq
// has sent or dropped it. `owner` must keep envelope.payload's tensors alive and unchanged for
// that long (e.g. a shared_ptr<const Payload> of the payload itself), so the caller may let go of
// its own reference as soon as the frames are handed to a socket.
std::vector<zmq::message_t> encode_zero_copy(const EnvelopeRef& envelope,
                                             std::shared_ptr<const void> owner,
                                             const CodecOptions& options = {});

// A received frame, as bytes.
using FrameView = std::span<const std::uint8_t>;
std::vector<FrameView> frame_views(std::span<const zmq::message_t> frames);

struct Decoded {
  Envelope envelope;
  Digest payload_sha256{};     // verified
  std::size_t wire_bytes = 0;  // all frames
};

// Decodes and verifies one message. Every length and count is checked against what the frames
// actually hold before anything is allocated. Throws DecodeError for anything wrong: too large,
// bad magic, wrong version, unknown type or enum value, truncated or trailing bytes in the
// header, invalid ids or texts, tensor manifest, payload byte count and chunk frames that
// disagree, or a payload that does not hash to the header's SHA-256.
Decoded decode(std::span<const FrameView> frames, const CodecOptions& options = {});

}  // namespace ppreid::proto
