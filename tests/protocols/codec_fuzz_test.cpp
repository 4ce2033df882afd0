// Mutations of valid messages, each aimed at one part of the wire layout (codec.h), with the
// outcome the decoder owes it: a DecodeError of the failure that part's check reports, or, where
// a change can still leave a well-formed message, a decoded message whose encoding is exactly the
// bytes that arrived (so nothing was accepted that the encoder would not have produced). Any other
// exception, an unexpected failure kind, bad_alloc from a length the frames do not hold, a crash
// or a hang fails. Deterministic (fixed seed); no timing here (bench/ is where speed is measured).
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <set>

#include "protocols/codec.h"
#include "tests/protocols/protocol_test_util.h"

namespace ppreid::proto {
namespace {

using Frames = std::vector<std::string>;
using F = DecodeFailure;

// The header frame: "PPRD", the version (uint16), the Cereal fields, and at its end
// payload_bytes (uint64), chunk_count (uint64) and the payload's SHA-256.
constexpr std::size_t kPrefixBytes = 6;
constexpr std::size_t kShaBytes = 32;
constexpr std::size_t kChunkCountAt = kShaBytes + 8;     // counted from the header's end
constexpr std::size_t kPayloadBytesAt = kShaBytes + 16;  // likewise

// Small limits, so that the oversize mutations stay cheap.
CodecOptions fuzz_options() {
  CodecOptions o;
  o.chunk_bytes = 100;  // several chunk frames per message with tensors
  o.max_message_bytes = 64 << 10;
  o.max_header_bytes = 8 << 10;
  return o;
}

class Mutator {
 public:
  explicit Mutator(std::uint64_t seed) : rng_(seed) {}
  // Uniform in [lo, hi].
  std::size_t in(std::size_t lo, std::size_t hi) {
    return std::uniform_int_distribution<std::size_t>(lo, hi)(rng_);
  }
  void flip_bit(std::string& f, std::size_t lo, std::size_t end) {
    f[in(lo, end - 1)] ^= static_cast<char>(1u << in(0, 7));
  }
  std::string junk(std::size_t n) {
    std::string s(n, '\0');
    for (char& c : s) c = static_cast<char>(in(0, 255));
    return s;
  }
  std::size_t chunk(const Frames& frames) { return in(1, frames.size() - 1); }

 private:
  std::mt19937_64 rng_;
};

std::uint64_t read_u64(const std::string& header, std::size_t from_end) {
  std::uint64_t v = 0;
  std::memcpy(&v, header.data() + header.size() - from_end, sizeof v);
  return v;
}
void write_u64(std::string& header, std::size_t from_end, std::uint64_t v) {
  std::memcpy(header.data() + header.size() - from_end, &v, sizeof v);
}

struct Mutation {
  const char* name;
  // Changes a valid message; false when it does not apply to this one (e.g. it has no chunks).
  std::function<bool(Frames&, Mutator&)> apply;
  std::set<DecodeFailure> expected;
  // Whether the result may still be a well-formed message (then it must decode to it).
  bool may_decode = false;
};

// Changes inside the header's Cereal fields can hit any field's check, or none.
const std::set<DecodeFailure> kAnyFieldFailure = {
    F::kTruncated,   F::kTrailingBytes, F::kTooLarge,      F::kUnknownType,
    F::kInvalidField, F::kShapeMismatch, F::kBadHash};

bool has_chunks(const Frames& f) { return f.size() > 1; }

std::vector<Mutation> mutations(const CodecOptions& options) {
  return {
      {"no frames at all", [](Frames& f, Mutator&) { return f.clear(), true; }, {F::kTruncated}},
      {"bit flip in the magic",
       [](Frames& f, Mutator& m) { return m.flip_bit(f[0], 0, 4), true; }, {F::kBadMagic}},
      {"bit flip in the version",
       [](Frames& f, Mutator& m) { return m.flip_bit(f[0], 4, kPrefixBytes), true; },
       {F::kUnsupportedVersion}},
      {"unknown message type",
       [](Frames& f, Mutator& m) {
         const std::size_t v = m.in(0, 255 - kMaxMessageType);
         f[0][kPrefixBytes] = static_cast<char>(v == 0 ? 0 : kMaxMessageType + v);
         return true;
       },
       {F::kUnknownType}},
      {"bit flip in a header field",
       [](Frames& f, Mutator& m) {
         return m.flip_bit(f[0], kPrefixBytes, f[0].size() - kShaBytes), true;
       },
       kAnyFieldFailure, true},
      {"a huge or zero 64-bit value over header field bytes",
       [](Frames& f, Mutator& m) {
         const std::uint64_t values[] = {~0ull, 1ull << 62, 1ull << 40, 0x7fffffffull, 0};
         const std::uint64_t v = values[m.in(0, 4)];
         std::memcpy(f[0].data() + m.in(kPrefixBytes, f[0].size() - 8), &v, 8);
         return true;
       },
       kAnyFieldFailure, true},
      {"bytes deleted from the header fields",
       [](Frames& f, Mutator& m) {
         const std::size_t at = m.in(kPrefixBytes, f[0].size() - 1);
         return f[0].erase(at, m.in(1, 8)), true;
       },
       kAnyFieldFailure, true},
      {"payload_bytes changed",
       [](Frames& f, Mutator& m) {
         write_u64(f[0], kPayloadBytesAt, read_u64(f[0], kPayloadBytesAt) ^ m.in(1, 1 << 20));
         return true;
       },
       {F::kShapeMismatch}},
      {"chunk_count raised",
       [](Frames& f, Mutator& m) {
         write_u64(f[0], kChunkCountAt, read_u64(f[0], kChunkCountAt) + m.in(1, 3));
         return true;
       },
       {F::kTruncated}},
      {"chunk_count lowered",
       [=](Frames& f, Mutator& m) {
         if (!has_chunks(f)) return false;
         write_u64(f[0], kChunkCountAt, read_u64(f[0], kChunkCountAt) - m.in(1, f.size() - 1));
         return true;
       },
       {F::kTrailingBytes}},
      {"bit flip in the header's SHA-256",
       [](Frames& f, Mutator& m) {
         return m.flip_bit(f[0], f[0].size() - kShaBytes, f[0].size()), true;
       },
       {F::kBadHash}},
      {"header cut inside the prefix",
       [](Frames& f, Mutator& m) { return f[0].resize(m.in(0, kPrefixBytes - 1)), true; },
       {F::kBadMagic}},
      {"header cut inside the fields",
       [](Frames& f, Mutator& m) { return f[0].resize(m.in(kPrefixBytes, f[0].size() - 1)), true; },
       {F::kTruncated}},
      {"junk after the header's last field",
       [](Frames& f, Mutator& m) { return f[0] += m.junk(m.in(1, 9)), true; },
       {F::kTrailingBytes}},
      {"header over max_header_bytes",
       [=](Frames& f, Mutator& m) {
         return f[0] += m.junk(options.max_header_bytes + 1 - f[0].size()), true;
       },
       {F::kTooLarge}},
      {"message over max_message_bytes",
       [=](Frames& f, Mutator& m) {
         std::size_t bytes = 0;
         for (const auto& frame : f) bytes += frame.size();
         return f.push_back(m.junk(options.max_message_bytes + 1 - bytes)), true;
       },
       {F::kTooLarge}},
      {"bit flip in a chunk",
       [=](Frames& f, Mutator& m) {
         if (!has_chunks(f)) return false;
         std::string& c = f[m.chunk(f)];
         return m.flip_bit(c, 0, c.size()), true;
       },
       {F::kBadHash}},
      {"chunk shortened",
       [=](Frames& f, Mutator& m) {
         if (!has_chunks(f)) return false;
         std::string& c = f[m.chunk(f)];
         if (c.size() < 2) return false;
         return c.resize(m.in(1, c.size() - 1)), true;
       },
       {F::kTruncated}},
      {"chunk emptied",
       [=](Frames& f, Mutator& m) { return has_chunks(f) && (f[m.chunk(f)].clear(), true); },
       {F::kInvalidField}},
      {"junk after a chunk",
       [=](Frames& f, Mutator& m) {
         return has_chunks(f) && (f[m.chunk(f)] += m.junk(m.in(1, 9)), true);
       },
       {F::kTrailingBytes}},
      {"chunk dropped",
       [=](Frames& f, Mutator& m) {
         return has_chunks(f) && (f.erase(f.begin() + static_cast<std::ptrdiff_t>(m.chunk(f))), true);
       },
       {F::kTruncated}},
      {"a frame repeated at the end",
       [](Frames& f, Mutator& m) { return f.push_back(f[m.in(0, f.size() - 1)]), true; },
       {F::kTrailingBytes}},
      {"two different chunks swapped",
       [=](Frames& f, Mutator& m) {
         if (f.size() < 3) return false;
         const std::size_t i = m.chunk(f), j = m.chunk(f);
         if (f[i] == f[j]) return false;
         return std::swap(f[i], f[j]), true;
       },
       {F::kBadHash}},
      {"header dropped, a chunk first",
       [=](Frames& f, Mutator&) { return has_chunks(f) && (f.erase(f.begin()), true); },
       {F::kBadMagic}},
      {"header swapped with a chunk",
       [=](Frames& f, Mutator& m) { return has_chunks(f) && (std::swap(f[0], f[m.chunk(f)]), true); },
       {F::kBadMagic}},
  };
}

// A valid message of the corpus and how it was encoded: copied, or with zero-copy frames (which
// cut the bytes where tensors start and end, not every chunk_bytes).
struct Sample {
  Frames frames;
  bool zero_copy = false;
};

Frames encoded(const Envelope& e, const CodecOptions& options, bool zero_copy) {
  if (!zero_copy) return testing::to_strings(encode(e, options));
  const auto payload = std::make_shared<const Payload>(e.payload);
  return testing::to_strings(encode_zero_copy(
      EnvelopeRef{e.version, e.federation_id, e.round, e.sender_id, *payload}, payload, options));
}

// The frames of an accepted message must be what encoding the decoded envelope the same way
// gives: the same header, and the same payload bytes (a receiver does not know the sender's
// chunk size).
void expect_canonical(const Decoded& d, const Sample& sample, const Frames& frames,
                      const CodecOptions& options) {
  const Frames again = encoded(d.envelope, options, sample.zero_copy);
  EXPECT_EQ(again[0], frames[0]) << "the header is not the encoding of what was decoded";
  std::string sent, received;
  for (std::size_t i = 1; i < again.size(); ++i) sent += again[i];
  for (std::size_t i = 1; i < frames.size(); ++i) received += frames[i];
  EXPECT_EQ(sent, received) << "the chunks are not the encoding of what was decoded";
}

std::string names(const std::set<DecodeFailure>& failures) {
  std::string s;
  for (DecodeFailure f : failures) s += std::string(s.empty() ? "" : ", ") + to_string(f);
  return s;
}

TEST(CodecFuzzTest, EveryMutationDecodesToItsOwnEncodingOrFailsAsExpected) {
  CodecOptions options = fuzz_options();
  options.zero_copy_min_bytes = 20;  // most sample tensors travel in frames of their own
  std::vector<Sample> valid;
  std::vector<MessageType> types;
  for (const Envelope& e : testing::one_of_each_type())
    for (const bool zero_copy : {false, true}) {
      if (zero_copy && !tensors_of(e.payload)) continue;  // the same frames as copied
      valid.push_back({encoded(e, options, zero_copy), zero_copy});
      types.push_back(e.type());
    }
  // The mutations below rely on where the header keeps its type and counts.
  for (std::size_t k = 0; k < valid.size(); ++k) {
    const Frames& frames = valid[k].frames;
    ASSERT_EQ(static_cast<std::uint8_t>(frames[0][kPrefixBytes]),
              static_cast<std::uint8_t>(types[k]));
    ASSERT_EQ(read_u64(frames[0], kChunkCountAt), frames.size() - 1);
    std::uint64_t payload = 0;
    for (std::size_t i = 1; i < frames.size(); ++i) payload += frames[i].size();
    ASSERT_EQ(read_u64(frames[0], kPayloadBytesAt), payload);
  }

  Mutator mutator(20240611);
  const int kRepeats = 150;  // per mutation and message type
  std::set<DecodeFailure> seen;
  for (const Mutation& mutation : mutations(options)) {
    SCOPED_TRACE(mutation.name);
    int applied = 0;
    for (int r = 0; r < kRepeats; ++r)
      for (const Sample& original : valid) {
        Frames frames = original.frames;
        if (!mutation.apply(frames, mutator)) continue;
        ++applied;
        std::optional<Decoded> decoded;
        try {
          decoded = testing::decode_strings(frames, options);
        } catch (const DecodeError& e) {
          seen.insert(e.failure());
          EXPECT_TRUE(mutation.expected.count(e.failure()))
              << "failed as " << to_string(e.failure()) << ", expected " << names(mutation.expected)
              << ": " << e.what();
        } catch (const std::exception& e) {
          ADD_FAILURE() << "threw something else than DecodeError: " << e.what();
        }
        if (decoded) {
          EXPECT_TRUE(mutation.may_decode) << "accepted: " << to_string(decoded->envelope.type());
          expect_canonical(*decoded, original, frames, options);
        }
        if (::testing::Test::HasFailure()) return;  // one report, not thousands
      }
    EXPECT_GE(applied, kRepeats) << "the mutation hardly ever applied";
  }
  // Every kind of failure the decoder distinguishes is reached by some mutation.
  EXPECT_EQ(names(seen), names({F::kTruncated, F::kTrailingBytes, F::kTooLarge, F::kBadMagic,
                                F::kUnsupportedVersion, F::kUnknownType, F::kInvalidField,
                                F::kShapeMismatch, F::kBadHash}));
}

}  // namespace
}  // namespace ppreid::proto
