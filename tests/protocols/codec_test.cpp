#include "protocols/codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cereal/types/string.hpp>

#include "protocols/wire_archive.h"
#include "tests/protocols/protocol_test_util.h"
#include "tests/support/errors.h"

namespace ppreid::proto {
namespace {

using ::testing::HasSubstr;
using testing::decode_strings;
using testing::one_of_each_type;
using testing::sample_tensors;
using testing::to_strings;

// The DecodeError that decoding `frames` throws (a test failure when it throws none).
DecodeError decode_error(const std::vector<std::string>& frames, const CodecOptions& options = {}) {
  try {
    decode_strings(frames, options);
  } catch (const DecodeError& e) {
    return e;
  }
  ADD_FAILURE() << "decode did not throw";
  return DecodeError(DecodeFailure::kTruncated, "none");
}

Envelope update_envelope() { return one_of_each_type()[2]; }

// A header frame written field by field, for inputs the encoder would never produce.
template <typename F>
std::string raw_header(std::uint16_t version, F&& fields) {
  std::string h = "PPRD";
  h.append(reinterpret_cast<const char*>(&version), 2);
  WireOutputArchive ar(h);
  fields(ar);
  return h;
}

TEST(CodecTest, EveryMessageTypeRoundTrips) {
  for (const Envelope& e : one_of_each_type()) {
    SCOPED_TRACE(to_string(e.type()));
    const auto frames = encode(e);
    const Decoded d = decode(frame_views(frames));
    EXPECT_EQ(d.envelope, e);
    EXPECT_EQ(d.envelope.type(), e.type());
    const NamedWireTensors* t = tensors_of(e.payload);
    EXPECT_EQ(d.payload_sha256, payload_sha256(t ? *t : NamedWireTensors{}));
    std::size_t bytes = 0;
    for (const auto& f : frames) bytes += f.size();
    EXPECT_EQ(d.wire_bytes, bytes);
  }
}

TEST(CodecTest, TensorBytesAreSplitIntoChunkFrames) {
  const Envelope e = update_envelope();
  std::size_t payload = 0;
  for (const auto& t : std::get<Update>(e.payload).weights) payload += t.data.size();
  CodecOptions options;
  options.chunk_bytes = 7;
  const auto frames = encode(e, options);
  ASSERT_EQ(frames.size(), 1 + (payload + 6) / 7);
  for (std::size_t i = 1; i < frames.size(); ++i) EXPECT_LE(frames[i].size(), 7u);
  EXPECT_EQ(decode(frame_views(frames), options).envelope, e);
  // Chunking is the sender's choice: a receiver with another chunk size decodes it too.
  EXPECT_EQ(decode(frame_views(frames)).envelope, e);
}

TEST(CodecTest, MessagesWithoutTensorsAreOneFrame) {
  EXPECT_EQ(encode(one_of_each_type()[0]).size(), 1u);
  Envelope empty_update = update_envelope();
  std::get<Update>(empty_update.payload).weights.clear();
  const auto frames = encode(empty_update);
  EXPECT_EQ(frames.size(), 1u);
  EXPECT_EQ(decode(frame_views(frames)).envelope, empty_update);
}

TEST(CodecTest, WrongProtocolVersionIsRejected) {
  Envelope e = one_of_each_type()[0];
  e.version = kProtocolVersion + 1;
  const DecodeError err = decode_error(to_strings(encode(e)));
  EXPECT_EQ(err.failure(), DecodeFailure::kUnsupportedVersion);
  EXPECT_EQ(err.error_code(), ErrorCode::kUnsupportedVersion);
  EXPECT_THAT(err.what(), HasSubstr("protocol version 2, this build speaks 1"));
}

TEST(CodecTest, NotAPpreidMessageIsRejected) {
  EXPECT_EQ(decode_error({"hello world"}).failure(), DecodeFailure::kBadMagic);
  EXPECT_EQ(decode_error({""}).failure(), DecodeFailure::kBadMagic);
  EXPECT_EQ(decode_error({}).failure(), DecodeFailure::kTruncated);
}

TEST(CodecTest, UnknownMessageTypeIsRejected) {
  auto frames = to_strings(encode(one_of_each_type()[5]));
  frames[0][6] = 42;  // the type follows "PPRD" and the version
  const DecodeError err = decode_error(frames);
  EXPECT_EQ(err.failure(), DecodeFailure::kUnknownType);
  EXPECT_EQ(err.error_code(), ErrorCode::kUnknownType);
  EXPECT_THAT(err.what(), HasSubstr("unknown message type 42"));
}

TEST(CodecTest, TrailingBytesInTheHeaderAreRejected) {
  auto frames = to_strings(encode(one_of_each_type()[5]));
  frames[0] += "xyz";
  const DecodeError err = decode_error(frames);
  EXPECT_EQ(err.failure(), DecodeFailure::kTrailingBytes);
  EXPECT_THAT(err.what(), HasSubstr("Heartbeat header: 3 bytes left over"));
}

TEST(CodecTest, TruncatedHeaderNamesTheField) {
  const auto full = to_strings(encode(one_of_each_type()[0]));
  for (std::size_t cut = 7; cut < full[0].size(); ++cut) {
    auto frames = full;
    frames[0].resize(cut);
    const DecodeError err = decode_error(frames);
    EXPECT_EQ(err.failure(), DecodeFailure::kTruncated) << cut << ": " << err.what();
    EXPECT_THAT(err.what(), HasSubstr("field '")) << cut;
  }
  auto frames = full;
  frames[0].resize(12);  // inside the federation id's length
  EXPECT_THAT(decode_error(frames).what(), HasSubstr("Hello header, field 'federation_id'"));
}

TEST(CodecTest, MissingOrExtraChunkFramesAreRejected) {
  const auto full = to_strings(encode(update_envelope(), CodecOptions{.chunk_bytes = 64}));
  ASSERT_GT(full.size(), 3u);
  auto missing = full;
  missing.pop_back();
  DecodeError err = decode_error(missing);
  EXPECT_EQ(err.failure(), DecodeFailure::kTruncated);
  EXPECT_THAT(err.what(), HasSubstr("announces " + std::to_string(full.size() - 1) +
                                    " chunk frames, the message has " +
                                    std::to_string(full.size() - 2)));
  auto extra = full;
  extra.push_back("more");
  EXPECT_EQ(decode_error(extra).failure(), DecodeFailure::kTrailingBytes);

  auto short_chunk = full;
  short_chunk.back().pop_back();
  err = decode_error(short_chunk);
  EXPECT_EQ(err.failure(), DecodeFailure::kTruncated);
  EXPECT_THAT(err.what(), HasSubstr("chunk frames hold"));
  auto long_chunk = full;
  long_chunk.back() += "x";
  EXPECT_EQ(decode_error(long_chunk).failure(), DecodeFailure::kTrailingBytes);
}

TEST(CodecTest, HashCatchesAFlippedPayloadByte) {
  const auto full = to_strings(encode(update_envelope()));
  ASSERT_EQ(full.size(), 2u);
  for (std::size_t at : {std::size_t{0}, full[1].size() / 2, full[1].size() - 1}) {
    auto frames = full;
    frames[1][at] ^= 0x01;
    const DecodeError err = decode_error(frames);
    EXPECT_EQ(err.failure(), DecodeFailure::kBadHash);
    EXPECT_EQ(err.error_code(), ErrorCode::kBadHash);
    EXPECT_THAT(err.what(), HasSubstr("Update: the payload (7 tensors"));
    EXPECT_THAT(err.what(), HasSubstr("the header says"));
  }
  auto frames = full;
  frames[0].back() ^= 0x80;  // the digest itself is the header's last field
  EXPECT_EQ(decode_error(frames).failure(), DecodeFailure::kBadHash);
}

TEST(CodecTest, SizeLimitsAreEnforced) {
  const auto frames = to_strings(encode(update_envelope()));
  std::size_t total = 0;
  for (const auto& f : frames) total += f.size();
  CodecOptions small;
  small.max_message_bytes = total - 1;
  small.max_header_bytes = 1024;
  DecodeError err = decode_error(frames, small);
  EXPECT_EQ(err.failure(), DecodeFailure::kTooLarge);
  EXPECT_EQ(err.error_code(), ErrorCode::kTooLarge);
  EXPECT_THAT(err.what(), HasSubstr("the message takes " + std::to_string(total) +
                                    " bytes, over max_message_bytes (" +
                                    std::to_string(total - 1) + " bytes)"));
  CodecOptions tiny_header;
  tiny_header.max_header_bytes = 100;
  EXPECT_THAT(decode_error(frames, tiny_header).what(), HasSubstr("over max_header_bytes (100"));
  // The sender refuses what such a receiver would refuse.
  EXPECT_THROW(encode(update_envelope(), small), Error);
}

TEST(CodecTest, HugeDeclaredLengthsThrowWithoutAllocating) {
  // A string length of 2^60: must not be allocated, only reported.
  const std::string header = raw_header(kProtocolVersion, [](WireOutputArchive& ar) {
    ar(std::uint8_t{1}, std::uint64_t{1} << 60);
  });
  const DecodeError err = decode_error({header});
  EXPECT_EQ(err.failure(), DecodeFailure::kTruncated);
  EXPECT_THAT(err.what(), HasSubstr("field 'federation_id': count 1152921504606846976 exceeds "
                                    "the 0 bytes left"));
}

TEST(CodecTest, ShapesThatDoNotMatchTheBytesAreRejected) {
  auto task_header = [](std::vector<std::int64_t> shape, std::uint64_t payload_bytes) {
    return raw_header(kProtocolVersion, [&](WireOutputArchive& ar) {
      ar(std::uint8_t{2}, std::string("fed"), std::uint64_t{1}, std::string("agg"));
      ar(std::uint32_t{1}, 0.1, 0.0, 0.0, std::uint32_t{4}, std::uint32_t{4}, std::uint64_t{0});
      ar(std::uint8_t{1});  // secure_aggregation: Cereal writes 'nullopt' = true
      ar(std::uint64_t{1}, std::string("w"), std::uint8_t{1},
         static_cast<std::uint64_t>(shape.size()));
      for (auto d : shape) ar(d);
      ar(payload_bytes, std::uint64_t{1});
      ar.write(std::string(32, '\0').data(), 32);
    });
  };
  // 10^12 float32s cannot be in a message of a few bytes.
  DecodeError err = decode_error({task_header({1000000, 1000000}, 16), std::string(16, 'x')});
  EXPECT_EQ(err.failure(), DecodeFailure::kShapeMismatch);
  EXPECT_THAT(err.what(), HasSubstr("tensor #0 'w': shape [1000000, 1000000] of f32"));
  err = decode_error({task_header({-1, 4}, 16), std::string(16, 'x')});
  EXPECT_EQ(err.failure(), DecodeFailure::kShapeMismatch);
  // The shape says 16 bytes, payload_bytes says 20.
  err = decode_error({task_header({4}, 20), std::string(20, 'x')});
  EXPECT_EQ(err.failure(), DecodeFailure::kShapeMismatch);
  EXPECT_THAT(err.what(), HasSubstr("shapes need 16 bytes but payload_bytes says 20 bytes"));
}

TEST(CodecTest, InvalidFieldValuesAreRejected) {
  // is_delta must be 0 or 1.
  auto frames = to_strings(encode(update_envelope()));
  const Envelope e = update_envelope();
  // Offset of is_delta: prefix 6, type 1, federation (8+8), round 8, sender (8+6).
  const std::size_t at = 6 + 1 + 8 + e.federation_id.size() + 8 + 8 + e.sender_id.size();
  ASSERT_EQ(frames[0][at], 1);
  frames[0][at] = 2;
  DecodeError err = decode_error(frames);
  EXPECT_EQ(err.failure(), DecodeFailure::kInvalidField);
  EXPECT_THAT(err.what(), HasSubstr("field 'payload.is_delta': a bool must be 0 or 1, not 2"));

  // An id with a newline could forge log lines.
  const std::string header = raw_header(kProtocolVersion, [](WireOutputArchive& ar) {
    ar(std::uint8_t{8}, std::string("fed"), std::uint64_t{0}, std::string("site\nforged"),
       std::string("bye"), std::uint64_t{0}, std::uint64_t{0}, std::uint64_t{0});
    Digest d = payload_sha256({});
    ar.write(d.data(), d.size());
  });
  err = decode_error({header});
  EXPECT_EQ(err.failure(), DecodeFailure::kInvalidField);
  EXPECT_THAT(err.what(), HasSubstr("field 'sender_id': 'site?forged' is not an id"));

  // An unknown error code.
  const std::string error_header = raw_header(kProtocolVersion, [](WireOutputArchive& ar) {
    ar(std::uint8_t{7}, std::string("fed"), std::uint64_t{0}, std::string("agg"),
       std::uint8_t{200});
  });
  err = decode_error({error_header});
  EXPECT_EQ(err.failure(), DecodeFailure::kUnknownType);
  EXPECT_THAT(err.what(), HasSubstr("field 'payload.code': unknown value 200"));
}

TEST(CodecTest, RepeatedNamesAndUnsortedMetricsAreRejected) {
  Envelope e = update_envelope();
  auto& weights = std::get<Update>(e.payload).weights;
  weights[1].name = weights[0].name;
  EXPECT_THAT(testing::error_of([&] { encode(e); }), HasSubstr("the name appears twice"));

  // Metrics come once each and in ascending key order, as the encoder writes them: anything else
  // is no message's encoding.
  const std::pair<std::string, std::string> cases[] = {
      {"mAP", "metric 'mAP' appears twice"},
      {"loss", "metric 'loss' follows 'mAP': metrics must be in ascending key order"}};
  for (const auto& c : cases) {
    const std::string header = raw_header(kProtocolVersion, [&](WireOutputArchive& ar) {
      ar(std::uint8_t{5}, std::string("fed"), std::uint64_t{0}, std::string("site"),
         std::uint64_t{3}, std::uint64_t{2}, std::string("mAP"), 0.5, c.first, 0.6);
    });
    const DecodeError err = decode_error({header});
    EXPECT_EQ(err.failure(), DecodeFailure::kInvalidField) << c.first;
    EXPECT_THAT(err.what(), HasSubstr(c.second));
  }
}

TEST(CodecTest, TensorsOnAMessageTypeWithoutThemAreRejected) {
  const std::string header = raw_header(kProtocolVersion, [](WireOutputArchive& ar) {
    ar(std::uint8_t{6}, std::string("fed"), std::uint64_t{0}, std::string("site"),
       std::string("idle"), std::uint64_t{1}, std::string("w"), std::uint8_t{9},
       std::uint64_t{1}, std::int64_t{1}, std::uint64_t{1}, std::uint64_t{1});
    ar.write(std::string(32, '\0').data(), 32);
  });
  const DecodeError err = decode_error({header, "x"});
  EXPECT_EQ(err.failure(), DecodeFailure::kInvalidField);
  EXPECT_THAT(err.what(), HasSubstr("Heartbeat carries no tensors, but the header lists 1"));
}

TEST(CodecTest, EncoderRefusesInvalidEnvelopes) {
  Envelope e = one_of_each_type()[0];
  std::get<Hello>(e.payload).site_id = "site-b";
  EXPECT_THAT(testing::error_of([&] { encode(e); }),
              HasSubstr("cannot encode Hello: field 'site_id' 'site-b' differs from the sender id"));
  e = one_of_each_type()[0];
  e.federation_id = "";
  EXPECT_THAT(testing::error_of([&] { encode(e); }), HasSubstr("field 'federation_id'"));
  e = update_envelope();
  std::get<Update>(e.payload).weights[0].data.pop_back();
  EXPECT_THAT(testing::error_of([&] { encode(e); }),
              HasSubstr("tensor #0 'backbone.conv1.weight': shape [8, 3, 3, 3] of f32 needs 864 "
                        "bytes but the tensor holds 863"));
  e = one_of_each_type()[1];
  std::get<Task>(e.payload).settings.learning_rate = std::nan("");
  EXPECT_THAT(testing::error_of([&] { encode(e); }), HasSubstr("settings.learning_rate"));
  EXPECT_THROW(encode(one_of_each_type()[0], CodecOptions{.chunk_bytes = 0}), Error);
}

}  // namespace
}  // namespace ppreid::proto
