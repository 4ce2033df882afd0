#pragma once

// The tensor part of the codec: how the bytes of a message's tensors, concatenated in manifest
// order, become chunk frames and come back (codec.h has the whole wire format). A receiver
// accepts any cut of the bytes into non-empty frames of at most the sender's chunk size, so the
// sender is free to choose where frames end.

#include <zmq.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "protocols/codec.h"
#include "protocols/tensor_codec.h"

namespace ppreid::proto {

// Appends the chunk frames of `tensors` to `frames` and feeds `hasher` their bytes in order.
// Without an owner every byte is copied, into frames of exactly chunk_bytes (the last one
// shorter), and from 4 MiB on the tensors are hashed on a second thread meanwhile. With one, tensors of at least options.zero_copy_min_bytes are cut into equal frames
// of at most chunk_bytes that point into their data and each hold a reference to `owner` until
// libzmq releases the frame, which can happen on a ZeroMQ I/O thread after the caller let go.
void append_chunk_frames(const NamedWireTensors& tensors, const CodecOptions& options,
                         const std::shared_ptr<const void>& owner, PayloadHasher& hasher,
                         std::vector<zmq::message_t>& frames);

// The receiving side: appends the bytes of `chunks` to the tensors' data in order, tensor i
// taking byte_counts[i] bytes, and feeds `hasher` the same bytes. From 4 MiB on a second thread
// copies while this one hashes (SHA-256 is most of the work and cannot be split); smaller
// payloads are hashed and copied block by block, each block while it is in cache. The data vectors must be empty;
// the caller has checked that the chunks hold exactly the sum of byte_counts (a mismatch still
// throws DecodeError).
void read_chunk_frames(std::span<const FrameView> chunks,
                       std::span<const std::uint64_t> byte_counts, NamedWireTensors& tensors,
                       PayloadHasher& hasher);

}  // namespace ppreid::proto
