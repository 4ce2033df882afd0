// Transport over real loopback sockets: tcp://127.0.0.1 with ephemeral ports, every receive with
// a timeout so that a bug fails the test instead of hanging it.
#include "protocols/transport.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zmq_addon.hpp>

#include <chrono>
#include <thread>

#include "core/util/atomic_file.h"
#include "tests/protocols/protocol_test_util.h"
#include "tests/support/errors.h"
#include "tests/support/temp_dir.h"

namespace ppreid::proto {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::one_of_each_type;
using testing::RawSite;

constexpr auto kWait = 5000ms;  // generous: CI machines are busy; a pass never waits this long

class TransportTest : public ::testing::Test {
 protected:
  TransportTest() {
    fs::create_directories(dir_ / "allow");
    aggregator_pub_ = write_keypair(dir_ / "aggregator");
    for (const char* site : {"site-a", "site-b", "site-c"}) {
      write_keypair(dir_ / site);
      fs::copy_file(dir_ / (std::string(site) + ".pub"), dir_ / "allow" / (std::string(site) + ".pub"));
    }
    write_keypair(dir_ / "stranger");  // not in the allow-list
  }

  ServerOptions server_options() const {
    ServerOptions o;
    o.endpoint = "tcp://127.0.0.1:*";
    o.federation_id = "fed-test";
    o.secret_key_file = dir_ / "aggregator.key";
    o.allow_list_dir = dir_ / "allow";
    o.socket.handshake_timeout = 3000ms;
    o.socket.send_timeout = 2000ms;
    o.socket.linger = 0ms;
    return o;
  }

  ClientOptions client_options(const Server& server, const std::string& site,
                               const std::string& key = "") const {
    ClientOptions o;
    o.endpoint = server.endpoint();
    o.site_id = site;
    o.federation_id = "fed-test";
    o.secret_key_file = dir_ / ((key.empty() ? site : key) + ".key");
    o.server_public_key_file = dir_ / "aggregator.pub";
    o.socket.handshake_timeout = 3000ms;
    o.socket.send_timeout = 2000ms;
    o.socket.linger = 0ms;
    return o;
  }

  testing::TempDir dir_;
  PublicKey aggregator_pub_ = PublicKey::from_bytes({});
};

// The Error a peer got back, or a failure.
ErrorMessage expect_error_reply(RawSite& site) {
  auto reply = site.receive(kWait);
  if (!reply) {
    ADD_FAILURE() << "no reply";
    return {};
  }
  const auto* err = std::get_if<ErrorMessage>(&reply->envelope.payload);
  if (!err) {
    ADD_FAILURE() << "reply is a " << to_string(reply->envelope.type());
    return {};
  }
  EXPECT_EQ(reply->envelope.sender_id, "aggregator");
  return *err;
}

Envelope as_sent_by(Envelope e, const std::string& sender, std::uint64_t round) {
  e.sender_id = sender;
  e.federation_id = "fed-test";
  e.round = round;
  return e;
}

TEST_F(TransportTest, EveryMessageTypeRoundTripsBothWays) {
  Server server(server_options());
  EXPECT_THAT(server.endpoint(), HasSubstr("tcp://127.0.0.1:"));
  Client client(client_options(server, "site-a"));
  EXPECT_TRUE(client.connected());
  Peer peer;
  for (const Envelope& e : one_of_each_type("site-a")) {
    SCOPED_TRACE(to_string(e.type()));
    client.send(e.round, e.payload);
    auto got = server.receive(kWait);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->site_id, "site-a");
    EXPECT_EQ(got->envelope, e);
    const NamedWireTensors* t = tensors_of(e.payload);
    EXPECT_EQ(got->payload_sha256, payload_sha256(t ? *t : NamedWireTensors{}));
    peer = got->peer;
  }
  for (const Envelope& e : one_of_each_type("aggregator")) {
    SCOPED_TRACE(to_string(e.type()));
    ASSERT_TRUE(server.send(peer, e.round, e.payload));
    auto got = client.receive(kWait);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->envelope, as_sent_by(e, "aggregator", e.round));
  }
  EXPECT_EQ(server.stats().messages_in, kMaxMessageType);  // one of each type, each way
  EXPECT_EQ(server.stats().messages_out, kMaxMessageType);
  EXPECT_EQ(server.stats().bytes_in, client.stats().bytes_out);
  EXPECT_EQ(server.stats().bytes_out, client.stats().bytes_in);
  EXPECT_EQ(server.stats().rejected, 0u);
  EXPECT_EQ(server.admitted_connections(), 1u);
  // Nothing else is waiting, and an empty wait returns in time.
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(server.receive(50ms));
  EXPECT_FALSE(client.receive(50ms));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
}

TEST_F(TransportTest, ThreeSitesExchangeARound) {
  Server server(server_options());
  std::vector<std::unique_ptr<Client>> sites;
  for (const char* id : {"site-a", "site-b", "site-c"})
    sites.push_back(std::make_unique<Client>(client_options(server, id)));
  for (std::size_t i = 0; i < sites.size(); ++i)
    sites[i]->send(0, Hello{sites[i]->options().site_id, DatasetSummary{100 + i, 10, 2, "pis", {}}});
  std::map<std::string, Peer> peers;
  for (int i = 0; i < 3; ++i) {
    auto got = server.receive(kWait);
    ASSERT_TRUE(got);
    EXPECT_EQ(std::get<Hello>(got->envelope.payload).site_id, got->site_id);
    peers[got->site_id] = got->peer;
  }
  ASSERT_EQ(peers.size(), 3u);

  Task task{testing::sample_tensors(9), TrainingSettings{}};
  std::vector<Peer> to;
  for (const auto& [site, peer] : peers) to.push_back(peer);
  EXPECT_TRUE(server.send_to_all(to, 1, task).empty());
  for (std::size_t i = 0; i < sites.size(); ++i) {
    auto got = sites[i]->receive(kWait);
    ASSERT_TRUE(got);
    ASSERT_EQ(std::get<Task>(got->envelope.payload), task);
    EXPECT_EQ(got->envelope.round, 1u);
    Update u{testing::sample_tensors(static_cast<std::uint32_t>(20 + i)), false, 100 + i,
             {{"loss", 1.0 / (1 + i)}}};
    sites[i]->send(1, u);
  }
  std::map<std::string, std::uint64_t> samples;
  for (int i = 0; i < 3; ++i) {
    auto got = server.receive(kWait);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->peer, peers[got->site_id]);
    samples[got->site_id] = std::get<Update>(got->envelope.payload).sample_count;
  }
  EXPECT_EQ(samples, (std::map<std::string, std::uint64_t>{
                         {"site-a", 100}, {"site-b", 101}, {"site-c", 102}}));
}

TEST_F(TransportTest, AnUnlistedKeyIsRefusedAndLogged) {
  testing::LogCapture log;
  Server server(server_options());
  const std::string stranger_pub = read_public_key(dir_ / "stranger.pub").z85();
  const std::string stranger_secret = util::read_file(dir_ / "stranger.key").substr(0, 40);
  const std::string msg =
      testing::error_of([&] { Client client(client_options(server, "site-a", "stranger")); });
  EXPECT_THAT(msg, HasSubstr("refused this site's key (ZAP status 400)"));
  EXPECT_THAT(msg, HasSubstr(stranger_pub));
  EXPECT_FALSE(server.receive(300ms));
  EXPECT_GE(server.refused_connections(), 1u);
  EXPECT_EQ(server.admitted_connections(), 0u);
  EXPECT_THAT(log.text(), HasSubstr("public key " + stranger_pub + " is not in the allow-list"));
  EXPECT_THAT(log.text(), Not(HasSubstr(stranger_secret)));

  // A raw socket that does not wait for the verdict gets nothing through either.
  RawSite raw(server.endpoint(), dir_ / "stranger.key", aggregator_pub_);
  raw.send(as_sent_by(one_of_each_type()[0], "site-a", 0));
  EXPECT_FALSE(server.receive(300ms));
}

TEST_F(TransportTest, AWrongServerKeyFailsTheClientClearlyAndInTime) {
  Server server(server_options());
  ClientOptions o = client_options(server, "site-a");
  o.server_public_key_file = dir_ / "site-b.pub";  // not the aggregator's key
  o.socket.handshake_timeout = 2000ms;
  const auto start = std::chrono::steady_clock::now();
  const std::string msg = testing::error_of([&] { Client client(o); });
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2500ms);
  EXPECT_THAT(msg, HasSubstr("the CURVE handshake with the aggregator at " + server.endpoint() +
                             " failed"));
  EXPECT_THAT(msg, HasSubstr("is most likely not the aggregator's key"));
  EXPECT_THAT(msg, HasSubstr(read_public_key(dir_ / "site-b.pub").z85()));
  EXPECT_FALSE(server.receive(100ms));
}

TEST_F(TransportTest, NobodyListeningIsAConnectError) {
  std::string endpoint;
  {
    Server gone(server_options());
    endpoint = gone.endpoint();
  }
  Server server(server_options());
  ClientOptions o = client_options(server, "site-a");
  o.endpoint = endpoint;
  o.socket.handshake_timeout = 300ms;
  try {
    Client client(o);
    FAIL() << "connected to a closed port";
  } catch (const ConnectError& e) {
    EXPECT_THAT(e.what(), HasSubstr("cannot reach the aggregator at " + endpoint + " within 300 ms"));
  }
}

TEST_F(TransportTest, ASiteCannotSendInAnotherSitesName) {
  testing::LogCapture log;
  Server server(server_options());
  std::vector<Rejection> rejections;
  server.set_rejection_observer([&](const Rejection& r) { rejections.push_back(r); });
  // site-a's key, claiming to be site-b.
  Client impostor(client_options(server, "site-b", "site-a"));
  impostor.send(4, Update{testing::sample_tensors(), false, 10, {}});
  EXPECT_FALSE(server.receive(300ms));
  auto reply = impostor.receive(kWait);
  ASSERT_TRUE(reply);
  const auto& err = std::get<ErrorMessage>(reply->envelope.payload);
  EXPECT_EQ(err.code, ErrorCode::kUnauthorized);
  EXPECT_THAT(err.message, HasSubstr("Update claims sender id 'site-b' but the connection "
                                     "authenticated as site 'site-a'"));
  EXPECT_EQ(reply->envelope.round, 4u);
  ASSERT_EQ(rejections.size(), 1u);
  EXPECT_EQ(rejections[0].site_id, "site-a");
  EXPECT_EQ(rejections[0].code, ErrorCode::kUnauthorized);
  EXPECT_EQ(server.stats().rejected_by_code.at(ErrorCode::kUnauthorized), 1u);
  EXPECT_THAT(log.text(), HasSubstr("refused a message from site 'site-a' (unauthorized)"));

  // The honest site-b still gets through.
  Client honest(client_options(server, "site-b"));
  honest.send(4, Heartbeat{"training"});
  auto got = server.receive(kWait);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->site_id, "site-b");
}

TEST_F(TransportTest, BadFramesGetErrorRepliesAndTheServerKeepsServing) {
  ServerOptions so = server_options();
  so.socket.codec.max_message_bytes = 64 << 10;
  so.socket.codec.max_header_bytes = 8 << 10;
  Server server(so);
  RawSite site(server.endpoint(), dir_ / "site-a.key", aggregator_pub_);
  const Envelope hello = as_sent_by(one_of_each_type()[0], "site-a", 0);
  const Envelope update = as_sent_by(one_of_each_type()[2], "site-a", 1);
  const auto good_update = testing::to_strings(encode(update));

  struct Case {
    const char* name;
    std::vector<std::string> frames;
    ErrorCode code;
    const char* says;
  };
  std::vector<Case> cases;
  cases.push_back({"garbage", {"garbage"}, ErrorCode::kMalformed, "not a ppreid message"});
  auto truncated = good_update;
  truncated[0].resize(truncated[0].size() / 2);
  cases.push_back({"truncated header", truncated, ErrorCode::kMalformed, "Update header, field"});
  auto short_chunk = good_update;
  short_chunk[1].resize(10);
  cases.push_back({"truncated chunk", short_chunk, ErrorCode::kMalformed, "chunk frames hold 10"});
  Envelope v2 = hello;
  v2.version = 2;
  cases.push_back({"wrong version", testing::to_strings(encode(v2)),
                   ErrorCode::kUnsupportedVersion, "protocol version 2"});
  auto unknown = testing::to_strings(encode(hello));
  unknown[0][6] = 99;
  cases.push_back({"unknown type", unknown, ErrorCode::kUnknownType, "unknown message type 99"});
  auto trailing = testing::to_strings(encode(hello));
  trailing[0] += "!!";
  cases.push_back({"trailing bytes", trailing, ErrorCode::kMalformed, "2 bytes left over"});
  auto flipped = good_update;
  flipped[1][100] ^= 0x10;
  cases.push_back({"flipped payload byte", flipped, ErrorCode::kBadHash, "hashes to SHA-256"});
  // Over max_message_bytes in total, each frame well under it (so libzmq lets it through).
  Envelope big = update;
  std::get<Update>(big.payload).weights = {
      testing::wire_tensor("big", DType::kF32, {20 << 10}, 1)};  // 80 KiB
  cases.push_back({"oversized", testing::to_strings(encode(big, CodecOptions{.chunk_bytes = 16 << 10})),
                   ErrorCode::kTooLarge, "over max_message_bytes (65536 bytes)"});

  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    site.send(c.frames);
    site.send(hello);
    // The server refuses the bad message inside receive() and serves the next valid one...
    auto got = server.receive(kWait);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->envelope, hello);
    // ...after replying with an Error that says what was wrong.
    const ErrorMessage err = expect_error_reply(site);
    EXPECT_EQ(err.code, c.code) << err.message;
    EXPECT_THAT(err.message, HasSubstr(c.says));
  }
  EXPECT_EQ(server.stats().rejected, cases.size());
}

TEST_F(TransportTest, AFrameOverMaxMessageSizeDropsOnlyThatConnection) {
  ServerOptions so = server_options();
  so.socket.codec.max_message_bytes = 64 << 10;
  so.socket.codec.max_header_bytes = 8 << 10;
  Server server(so);
  Client other(client_options(server, "site-b"));
  RawSite site(server.endpoint(), dir_ / "site-a.key", aggregator_pub_);
  // One 1 MiB frame: libzmq (ZMQ_MAXMSGSIZE) closes the connection before allocating it.
  site.send({std::string(1 << 20, 'x')});
  EXPECT_FALSE(server.receive(300ms));
  // Other sites are served meanwhile...
  other.send(2, Heartbeat{"idle"});
  auto got = server.receive(kWait);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->site_id, "site-b");
  // ...and the dropped site reconnects and is served again.
  site.send(as_sent_by(one_of_each_type()[5], "site-a", 2));
  got = server.receive(kWait);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->site_id, "site-a");
}

TEST_F(TransportTest, AnotherFederationIsRejected) {
  Server server(server_options());
  ClientOptions o = client_options(server, "site-a");
  o.federation_id = "fed-other";
  Client client(o);
  client.send(0, Heartbeat{"idle"});
  EXPECT_FALSE(server.receive(300ms));
  EXPECT_EQ(server.stats().rejected_by_code.at(ErrorCode::kWrongFederation), 1u);
  // The Error reply is of the aggregator's federation, which the site reports as a failure.
  EXPECT_THAT(testing::error_of([&] { client.receive(kWait); }),
              HasSubstr("sent a message (Error) of federation 'fed-test', this site belongs to 'fed-other'"));
}

TEST_F(TransportTest, SendingToAGoneSiteReturnsFalse) {
  Server server(server_options());
  Peer peer;
  {
    Client client(client_options(server, "site-a"));
    client.send(0, Heartbeat{"idle"});
    auto got = server.receive(kWait);
    ASSERT_TRUE(got);
    peer = got->peer;
  }
  bool delivered = true;
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (delivered && std::chrono::steady_clock::now() < deadline) {
    delivered = server.send(peer, 1, Heartbeat{"still there?"});
    if (delivered) std::this_thread::sleep_for(20ms);
  }
  EXPECT_FALSE(delivered);
}

TEST_F(TransportTest, ASiteReconnectsAfterTheAggregatorRestarts) {
  auto server = std::make_unique<Server>(server_options());
  ServerOptions again = server_options();
  again.endpoint = server->endpoint();  // the same port
  Client client(client_options(*server, "site-a"));
  EXPECT_EQ(client.handshakes(), 1u);
  server.reset();
  server = std::make_unique<Server>(again);
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (client.handshakes() < 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  EXPECT_EQ(client.handshakes(), 2u);
  EXPECT_TRUE(client.connected());
  client.send(1, Heartbeat{"back"});
  auto got = server->receive(kWait);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->site_id, "site-a");
}

TEST_F(TransportTest, InsecureModeWorksOnlyWhenAskedForAndWarns) {
  testing::LogCapture log;
  ServerOptions so = server_options();
  so.security = Security::kInsecure;
  Server server(so);
  EXPECT_THAT(log.text(), HasSubstr("INSECURE MODE (aggregator at " + server.endpoint()));
  ClientOptions co = client_options(server, "site-a");
  co.security = Security::kInsecure;
  Client client(co);
  EXPECT_THAT(log.text(), HasSubstr("INSECURE MODE (site at"));
  client.send(0, Heartbeat{"idle"});
  auto got = server.receive(kWait);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->site_id, "site-a");  // unverified: whatever the envelope claims

  // A CURVE client cannot talk to an insecure aggregator, and the message says why: depending on
  // which end notices the mismatch first, the site sees "different security mechanisms" or a
  // closed connection, whose message names insecure mode as the other cause.
  const std::string msg =
      testing::error_of([&] { Client curve(client_options(server, "site-a")); });
  EXPECT_THAT(msg, HasSubstr("insecure mode"));
}

TEST_F(TransportTest, CurveNeedsKeysUnlessInsecureIsExplicit) {
  ServerOptions so = server_options();
  so.secret_key_file.clear();
  EXPECT_THAT(testing::error_of([&] { Server s(so); }), HasSubstr("needs its secret key file"));
  so = server_options();
  so.allow_list_dir = dir_ / "no-such-dir";
  EXPECT_THAT(testing::error_of([&] { Server s(so); }), HasSubstr("does not exist"));
  so = server_options();
  so.federation_id = "bad id";
  EXPECT_THAT(testing::error_of([&] { Server s(so); }), HasSubstr("federation_id 'bad id'"));
}

TEST_F(TransportTest, ReloadedAllowListAdmitsANewSite) {
  Server server(server_options());
  EXPECT_THROW(Client(client_options(server, "stranger")), HandshakeError);
  fs::copy_file(dir_ / "stranger.pub", dir_ / "allow" / "stranger.pub");
  server.reload_allow_list();
  Client client(client_options(server, "stranger"));
  client.send(0, Heartbeat{"hi"});
  auto got = server.receive(kWait);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->site_id, "stranger");
}

}  // namespace
}  // namespace ppreid::proto
