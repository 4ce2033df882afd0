// Zero-copy chunk frames (encode_zero_copy; Client/Server::send of a shared or moved payload):
// the frames of large tensors point into the tensors' memory and keep them alive until libzmq
// is done; what the receiver checks is unchanged.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <thread>

#include "protocols/codec.h"
#include "protocols/transport.h"
#include "tests/protocols/protocol_test_util.h"
#include "tests/support/temp_dir.h"

namespace ppreid::proto::zero_copy_tests {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::to_strings;
using testing::wire_tensor;

// Large tensors (referenced) between small ones (copied), an empty one, two dtypes.
NamedWireTensors mixed_tensors(std::uint32_t seed = 1) {
  return {wire_tensor("conv1.weight", DType::kF32, {64, 3, 7, 7}, seed),          // 37,632 B
          wire_tensor("layer1.conv.weight", DType::kF32, {128, 64, 3, 3}, seed + 1),  // 294,912 B
          wire_tensor("layer1.bn.weight", DType::kF32, {128}, seed + 2),
          wire_tensor("layer1.bn.bias", DType::kF32, {128}, seed + 3),
          wire_tensor("empty", DType::kF32, {0, 3}, seed + 4),
          wire_tensor("fc.weight", DType::kF16, {300, 256}, seed + 5),  // 153,600 B
          wire_tensor("fc.bias", DType::kF16, {300}, seed + 6)};
}

Update mixed_update(std::uint32_t seed = 1) {
  return Update{mixed_tensors(seed), true, 640, {{"loss", 0.5}}};
}

Envelope envelope_of(Payload payload, const std::string& sender = "site-a",
                     std::uint64_t round = 3) {
  return Envelope{kProtocolVersion, "fed-test", round, sender, std::move(payload)};
}

EnvelopeRef ref_of(const Envelope& e, const Payload& payload) {
  return EnvelopeRef{e.version, e.federation_id, e.round, e.sender_id, payload};
}

CodecOptions small_chunks() {
  CodecOptions o;
  o.chunk_bytes = 100 << 10;
  return o;
}

// Whether frame `f` lies inside the bytes of tensor `t`.
bool points_into(const zmq::message_t& f, const WireTensor& t) {
  const auto* p = static_cast<const std::uint8_t*>(f.data());
  return p >= t.data.data() && p + f.size() <= t.data.data() + t.data.size();
}

TEST(ZeroCopyTest, LargeTensorsTravelFromTheirOwnMemoryAndDecodeToTheSameMessage) {
  const Envelope expected = envelope_of(mixed_update());
  const auto payload = std::make_shared<const Payload>(expected.payload);
  const CodecOptions options = small_chunks();
  const auto frames = encode_zero_copy(ref_of(expected, *payload), payload, options);
  const NamedWireTensors& tensors = std::get<Update>(*payload).weights;

  std::size_t referencing = 0;
  for (std::size_t i = 1; i < frames.size(); ++i) {
    EXPECT_GT(frames[i].size(), 0u);
    EXPECT_LE(frames[i].size(), options.chunk_bytes);
    for (const WireTensor& t : tensors)
      if (points_into(frames[i], t)) {
        ++referencing;
        EXPECT_GE(t.data.size(), options.zero_copy_min_bytes) << t.name;
      }
  }
  // 294,912 bytes in 3 equal frames of 98,304; 153,600 in 2 of 76,800; the rest copied.
  EXPECT_EQ(referencing, 5u);
  EXPECT_EQ(frames[2].size(), 98'304u);
  EXPECT_EQ(frames[6].size(), 76'800u);

  const Decoded d = decode(frame_views(frames), options);
  EXPECT_EQ(d.envelope, expected);
  EXPECT_EQ(d.payload_sha256, payload_sha256(tensors));
  // The receiver does not need the sender's chunk size, and the copying encoder's header carries
  // the same digest.
  EXPECT_EQ(decode(frame_views(frames)).envelope, expected);
  EXPECT_EQ(decode(frame_views(encode(expected, options))).payload_sha256, d.payload_sha256);
}

TEST(ZeroCopyTest, FramesKeepThePayloadAliveUntilTheyAreReleased) {
  const Envelope expected = envelope_of(mixed_update(7));
  auto payload = std::make_shared<const Payload>(expected.payload);
  const std::weak_ptr<const Payload> watch = payload;
  auto frames = encode_zero_copy(ref_of(expected, *payload), payload, small_chunks());
  payload.reset();  // the sender lets go as soon as the frames exist
  EXPECT_FALSE(watch.expired());
  EXPECT_EQ(decode(frame_views(frames)).envelope, expected);
  // A copy of a frame (what Server::send_to_all does per peer) shares the reference.
  zmq::message_t shared;
  shared.copy(frames[2]);
  frames.clear();
  EXPECT_FALSE(watch.expired());
  shared.rebuild();
  EXPECT_TRUE(watch.expired());
}

TEST(ZeroCopyTest, WithoutAnOwnerEveryByteIsCopied) {
  const Envelope expected = envelope_of(mixed_update(3));
  Envelope changed = expected;
  const auto frames = encode(changed, small_chunks());
  for (WireTensor& t : std::get<Update>(changed.payload).weights)
    std::fill(t.data.begin(), t.data.end(), 0xAB);
  EXPECT_EQ(decode(frame_views(frames)).envelope, expected);
  for (std::size_t i = 1; i + 1 < frames.size(); ++i)
    EXPECT_EQ(frames[i].size(), small_chunks().chunk_bytes);
}

TEST(ZeroCopyTest, ACorruptedOrMissingChunkIsStillRefused) {
  const Envelope expected = envelope_of(mixed_update(5));
  const auto payload = std::make_shared<const Payload>(expected.payload);
  const auto valid = to_strings(encode_zero_copy(ref_of(expected, *payload), payload,
                                                 small_chunks()));
  ASSERT_GT(valid.size(), 4u);
  for (std::size_t i = 1; i < valid.size(); ++i) {
    SCOPED_TRACE("chunk frame " + std::to_string(i) + " of " + std::to_string(valid.size() - 1));
    auto flipped = valid;
    flipped[i][flipped[i].size() / 2] ^= 0x10;
    try {
      testing::decode_strings(flipped);
      ADD_FAILURE() << "a flipped bit was accepted";
    } catch (const DecodeError& e) {
      EXPECT_EQ(e.failure(), DecodeFailure::kBadHash) << e.what();
      EXPECT_EQ(e.error_code(), ErrorCode::kBadHash);
    }
    auto dropped = valid;
    dropped.erase(dropped.begin() + static_cast<std::ptrdiff_t>(i));
    EXPECT_THROW(testing::decode_strings(dropped), DecodeError);
  }
  // The payload itself was never touched: the sender's tensors are intact.
  EXPECT_EQ(std::get<Update>(*payload).weights, mixed_tensors(5));
}

TEST(ZeroCopyTest, TheThresholdIsAnOptionAndMustBePositive) {
  const Envelope expected = envelope_of(mixed_update(9));
  const auto payload = std::make_shared<const Payload>(expected.payload);
  CodecOptions options = small_chunks();
  options.zero_copy_min_bytes = 1;  // every non-empty tensor is referenced
  const auto frames = encode_zero_copy(ref_of(expected, *payload), payload, options);
  EXPECT_EQ(frames.size(), 1u + 1 + 3 + 1 + 1 + 2 + 1);  // header, then per tensor
  EXPECT_EQ(decode(frame_views(frames)).envelope, expected);
  options.zero_copy_min_bytes = 0;
  EXPECT_THROW(encode_zero_copy(ref_of(expected, *payload), payload, options), Error);
}

// From 4 MiB on, the copying encoder hashes on a second thread and the decoder copies on one:
// the same frames, the same digest, the same refusals.
TEST(ZeroCopyTest, LargePayloadsHashAndCopyOnTwoThreadsWithTheSameResult) {
  NamedWireTensors tensors = mixed_tensors(41);
  tensors.push_back(wire_tensor("layer4.conv.weight", DType::kF32, {512, 512, 3, 3}, 42));  // 9 MiB
  tensors.push_back(wire_tensor("layer4.bn.weight", DType::kF32, {512}, 43));
  const Envelope expected = envelope_of(Update{tensors, false, 9, {}});
  const auto payload = std::make_shared<const Payload>(expected.payload);
  const CodecOptions options;  // 1 MiB chunks
  const Digest digest = payload_sha256(tensors);
  const auto copied = encode(expected, options);
  const auto referencing = encode_zero_copy(ref_of(expected, *payload), payload, options);
  for (const auto* frames : {&copied, &referencing}) {
    const Decoded d = decode(frame_views(*frames), options);
    EXPECT_EQ(d.envelope, expected);
    EXPECT_EQ(d.payload_sha256, digest);
    auto corrupted = to_strings(*frames);
    corrupted[corrupted.size() / 2][12345 % corrupted[corrupted.size() / 2].size()] ^= 1;
    try {
      testing::decode_strings(corrupted);
      ADD_FAILURE() << "a flipped bit was accepted";
    } catch (const DecodeError& e) {
      EXPECT_EQ(e.failure(), DecodeFailure::kBadHash) << e.what();
    }
    auto shortened = to_strings(*frames);
    shortened.back().pop_back();
    EXPECT_THROW(testing::decode_strings(shortened), DecodeError);
  }
  EXPECT_EQ(to_strings(copied)[0].size(), to_strings(referencing)[0].size());  // same digest field
}

// ---- over the transport ------------------------------------------------------------------

constexpr auto kWaitFor = 5000ms;

class ZeroCopyTransportTest : public ::testing::Test {
 protected:
  ZeroCopyTransportTest() {
    fs::create_directories(dir_ / "allow");
    write_keypair(dir_ / "aggregator");
    for (const char* site : {"site-a", "site-b"}) {
      write_keypair(dir_ / site);
      fs::copy_file(dir_ / (std::string(site) + ".pub"),
                    dir_ / "allow" / (std::string(site) + ".pub"));
    }
  }
  ServerOptions server_options() const {
    ServerOptions o;
    o.federation_id = "fed-test";
    o.secret_key_file = dir_ / "aggregator.key";
    o.allow_list_dir = dir_ / "allow";
    o.socket.linger = 0ms;
    o.socket.codec = small_chunks();
    return o;
  }
  ClientOptions client_options(const Server& server, const std::string& site) const {
    ClientOptions o;
    o.endpoint = server.endpoint();
    o.site_id = site;
    o.federation_id = "fed-test";
    o.secret_key_file = dir_ / (site + ".key");
    o.server_public_key_file = dir_ / "aggregator.pub";
    o.socket.linger = 0ms;
    o.socket.codec = small_chunks();
    return o;
  }
  testing::TempDir dir_;
};

// libzmq releases a sent frame on its I/O thread, shortly after sending it.
bool released_in_time(const std::weak_ptr<const Payload>& watch) {
  for (int i = 0; i < 500 && !watch.expired(); ++i) std::this_thread::sleep_for(10ms);
  return watch.expired();
}

TEST_F(ZeroCopyTransportTest, ASiteSendsASharedOrMovedUpdateWithoutKeepingIt) {
  Server server(server_options());
  Client client(client_options(server, "site-a"));
  auto payload = std::make_shared<const Payload>(mixed_update(11));
  const std::weak_ptr<const Payload> watch = payload;
  client.send(3, std::move(payload));  // the frames hold the only references now
  auto got = server.receive(kWaitFor);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->envelope, envelope_of(mixed_update(11)));
  EXPECT_TRUE(released_in_time(watch));

  client.send(3, Payload(mixed_update(12)));  // a moved payload goes the same way
  got = server.receive(kWaitFor);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->envelope, envelope_of(mixed_update(12)));
  EXPECT_EQ(got->payload_sha256, payload_sha256(mixed_tensors(12)));
  EXPECT_EQ(server.stats().bytes_in, client.stats().bytes_out);
}

TEST_F(ZeroCopyTransportTest, TheAggregatorSharesOneTaskBetweenSites) {
  Server server(server_options());
  Client a(client_options(server, "site-a")), b(client_options(server, "site-b"));
  std::vector<Peer> peers;
  for (Client* c : {&a, &b}) {
    c->send(0, Hello{c->options().site_id, DatasetSummary{10, 2, 1, "dp", {}}});
    auto hello = server.receive(kWaitFor);
    ASSERT_TRUE(hello);
    peers.push_back(hello->peer);
  }
  Task task;
  task.weights = mixed_tensors(21);
  auto payload = std::make_shared<const Payload>(task);
  const std::weak_ptr<const Payload> watch = payload;
  EXPECT_TRUE(server.send_to_all(peers, 4, std::move(payload)).empty());
  for (Client* c : {&a, &b}) {
    auto got = c->receive(kWaitFor);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->envelope, envelope_of(task, "aggregator", 4));
  }
  EXPECT_TRUE(released_in_time(watch));
  // A Task lvalue becomes a temporary Payload, which is moved, not copied again, into the frames.
  task.weights = mixed_tensors(23);
  EXPECT_TRUE(server.send_to_all(peers, 5, task).empty());
  for (Client* c : {&a, &b}) {
    auto got = c->receive(kWaitFor);
    ASSERT_TRUE(got);
    EXPECT_EQ(std::get<Task>(got->envelope.payload).weights, mixed_tensors(23));
  }
  EXPECT_EQ(task.weights, mixed_tensors(23));
  EXPECT_TRUE(server.send(peers[0], 5, Payload(Evaluate{mixed_tensors(22)})));
  auto got = a.receive(kWaitFor);
  ASSERT_TRUE(got);
  EXPECT_EQ(std::get<Evaluate>(got->envelope.payload).weights, mixed_tensors(22));
}

TEST_F(ZeroCopyTransportTest, SocketBufferSizesMustNotBeNegative) {
  ServerOptions o = server_options();
  o.socket.send_buffer_bytes = -1;
  EXPECT_THROW(Server server(o), Error);
  o.socket.send_buffer_bytes = 1 << 20;
  o.socket.receive_buffer_bytes = 1 << 20;
  Server server(o);
  Client client(client_options(server, "site-a"));
  client.send(1, Payload(mixed_update(31)));
  ASSERT_TRUE(server.receive(kWaitFor));
}

}  // namespace
}  // namespace ppreid::proto::zero_copy_tests
