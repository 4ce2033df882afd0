#include "protocols/chunk_frames.h"

#include <algorithm>
#include <cstring>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <system_error>
#include <thread>

namespace ppreid::proto {
namespace {

// Bytes hashed at a time while copying: a block is hashed and copied while it is in L1/L2.
constexpr std::size_t kHashBlockBytes = std::size_t{64} << 10;
// From this many copied bytes on, one thread copies while another hashes: SHA-256 of a stream is
// sequential and is most of the work, so the copy then costs no time on a machine with 2 cores.
constexpr std::uint64_t kCopyBesideHashMinBytes = std::uint64_t{4} << 20;

// Runs `beside` on a new thread while `here` runs on this one, then rethrows the first failure
// (this thread's first). Without a thread to be had, runs both here.
void run_beside(const std::function<void()>& beside, const std::function<void()>& here) {
  std::exception_ptr beside_failed;
  std::optional<std::thread> thread;
  try {
    thread.emplace([&] {
      try {
        beside();
      } catch (...) {
        beside_failed = std::current_exception();
      }
    });
  } catch (const std::system_error&) {
    beside();
    here();
    return;
  }
  try {
    here();
  } catch (...) {
    thread->join();
    throw;
  }
  thread->join();
  if (beside_failed) std::rethrow_exception(beside_failed);
}

bool worth_a_thread(std::uint64_t bytes) {
  return bytes >= kCopyBesideHashMinBytes && std::thread::hardware_concurrency() > 1;
}

// libzmq's free function of a frame that points into a payload: drops that frame's reference.
void release_payload_reference(void*, void* hint) {
  delete static_cast<std::shared_ptr<const void>*>(hint);
}

zmq::message_t frame_referencing(const std::uint8_t* data, std::size_t size,
                                 const std::shared_ptr<const void>& owner) {
  auto reference = std::make_unique<std::shared_ptr<const void>>(owner);
  // libzmq only reads a message's data; the const_cast is its C API's, not a licence to write.
  zmq::message_t frame(const_cast<std::uint8_t*>(data), size, &release_payload_reference,
                       reference.get());
  reference.release();  // the frame owns it now
  return frame;
}

// A tensor's bytes in frames of at most chunk_bytes, all of (nearly) the same size, so that no
// tiny frame is left at the end.
void append_referencing(const std::vector<std::uint8_t>& data, std::size_t chunk_bytes,
                        const std::shared_ptr<const void>& owner,
                        std::vector<zmq::message_t>& frames) {
  const std::size_t count = (data.size() + chunk_bytes - 1) / chunk_bytes;
  const std::size_t piece = (data.size() + count - 1) / count;
  for (std::size_t at = 0; at < data.size(); at += piece)
    frames.push_back(frame_referencing(data.data() + at, std::min(piece, data.size() - at), owner));
}

// Tensors from `first` on, `bytes` in all, copied into frames of chunk_bytes (the last shorter);
// with a hasher, each block is hashed right after it is copied (while it is in cache).
void append_copied(const NamedWireTensors& tensors, std::size_t first, std::uint64_t bytes,
                   std::size_t chunk_bytes, PayloadHasher* hasher,
                   std::vector<zmq::message_t>& frames) {
  std::size_t tensor = first, offset = 0;  // read position
  for (std::uint64_t left = bytes; left > 0;) {
    const auto size = static_cast<std::size_t>(std::min<std::uint64_t>(left, chunk_bytes));
    zmq::message_t& chunk = frames.emplace_back(size);
    auto* out = static_cast<std::uint8_t*>(chunk.data());
    for (std::size_t filled = 0; filled < size;) {
      const std::size_t block_start = filled;
      const std::size_t block_end = std::min(size, filled + kHashBlockBytes);
      while (filled < block_end) {
        const std::vector<std::uint8_t>& data = tensors[tensor].data;
        const std::size_t n = std::min(block_end - filled, data.size() - offset);
        if (n > 0) std::memcpy(out + filled, data.data() + offset, n);
        filled += n;
        offset += n;
        if (offset == data.size()) ++tensor, offset = 0;
      }
      if (hasher) hasher->add_bytes(out + block_start, block_end - block_start);
    }
    left -= size;
  }
}

// Appends the chunks' bytes to the tensors in order; with a hasher, hashes each block right
// before copying it (it is then in cache for the copy).
void copy_into_tensors(std::span<const FrameView> chunks,
                       std::span<const std::uint64_t> byte_counts, NamedWireTensors& tensors,
                       PayloadHasher* hasher) {
  std::size_t tensor = 0;
  for (const FrameView& chunk : chunks) {
    for (std::size_t used = 0; used < chunk.size();) {
      const std::size_t block = std::min(kHashBlockBytes, chunk.size() - used);
      if (hasher) hasher->add_bytes(chunk.data() + used, block);
      for (const std::size_t block_end = used + block; used < block_end;) {
        while (tensor < tensors.size() && tensors[tensor].data.size() == byte_counts[tensor])
          ++tensor;  // full, or empty
        if (tensor == tensors.size())
          throw DecodeError(DecodeFailure::kTrailingBytes,
                            "the chunk frames hold more bytes than the tensors need");
        std::vector<std::uint8_t>& data = tensors[tensor].data;
        const std::size_t n =
            std::min<std::uint64_t>(block_end - used, byte_counts[tensor] - data.size());
        data.insert(data.end(), chunk.data() + used, chunk.data() + used + n);  // no zero fill
        used += n;
      }
    }
  }
  for (; tensor < tensors.size(); ++tensor)
    if (tensors[tensor].data.size() != byte_counts[tensor])
      throw DecodeError(DecodeFailure::kTruncated,
                        "the chunk frames end inside tensor #" + std::to_string(tensor));
}

}  // namespace

void append_chunk_frames(const NamedWireTensors& tensors, const CodecOptions& options,
                         const std::shared_ptr<const void>& owner, PayloadHasher& hasher,
                         std::vector<zmq::message_t>& frames) {
  const std::size_t chunk_bytes = options.chunk_bytes;
  const auto referenced = [&](const WireTensor& t) {
    return owner != nullptr && !t.data.empty() && t.data.size() >= options.zero_copy_min_bytes;
  };
  std::uint64_t bytes = 0;
  for (const WireTensor& t : tensors) bytes += t.data.size();
  if (!owner && worth_a_thread(bytes)) {  // everything is copied: hash the tensors meanwhile
    run_beside([&] { for (const WireTensor& t : tensors) hasher.add_bytes(t.data.data(), t.data.size()); },
               [&] { append_copied(tensors, 0, bytes, chunk_bytes, nullptr, frames); });
    return;
  }
  for (std::size_t i = 0; i < tensors.size();) {
    if (referenced(tensors[i])) {
      append_referencing(tensors[i].data, chunk_bytes, owner, frames);
      hasher.add_bytes(tensors[i].data.data(), tensors[i].data.size());
      ++i;
      continue;
    }
    // A run of tensors that are copied: up to the next referenced one.
    std::size_t end = i;
    std::uint64_t run = 0;
    for (; end < tensors.size() && !referenced(tensors[end]); ++end) run += tensors[end].data.size();
    append_copied(tensors, i, run, chunk_bytes, &hasher, frames);
    i = end;
  }
}

void read_chunk_frames(std::span<const FrameView> chunks,
                       std::span<const std::uint64_t> byte_counts, NamedWireTensors& tensors,
                       PayloadHasher& hasher) {
  std::uint64_t bytes = 0;
  for (const FrameView& chunk : chunks) bytes += chunk.size();
  if (worth_a_thread(bytes))
    run_beside([&] { copy_into_tensors(chunks, byte_counts, tensors, nullptr); },
               [&] { for (const FrameView& c : chunks) hasher.add_bytes(c.data(), c.size()); });
  else
    copy_into_tensors(chunks, byte_counts, tensors, &hasher);
}

}  // namespace ppreid::proto
