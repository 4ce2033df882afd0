#pragma once

// ZeroMQ endpoints of a federation: a ROUTER Server on the aggregator, one DEALER Client per
// site. CURVE (encryption and authentication) on every socket unless Security::kInsecure is asked
// for explicitly. Both are RAII (closing and terminating their own context) and never block
// longer than the timeouts they are given: receive() returns std::nullopt when nothing arrived in
// time; real failures throw. Not thread-safe: calls on one object must not overlap (a mutex
// around it is enough, e.g. for a site that sends heartbeats from its training thread).

#include <zmq.hpp>

#include <chrono>
#include <compare>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/util/error.h"
#include "protocols/codec.h"
#include "protocols/keys.h"
#include "protocols/message.h"

namespace ppreid::proto {

class ZapHandler;
class SocketMonitor;

// One event of a socket monitor (zmq_socket_monitor): ZMQ_EVENT_* and its value.
struct SocketMonitorEvent {
  std::uint16_t event = 0;
  std::uint32_t value = 0;
  std::string endpoint;
};

enum class Security : std::uint8_t {
  kCurve,     // CURVE encryption + ZAP allow-list (the default, and the only production mode)
  kInsecure,  // plain TCP, no authentication: local experiments only; logs a loud warning
};

// Socket settings shared by both ends.
struct SocketOptions {
  CodecOptions codec;  // also sets ZMQ_MAXMSGSIZE = codec.max_message_bytes
  // How long send() may wait for a connection / queue space before failing (ZMQ_SNDTIMEO).
  std::chrono::milliseconds send_timeout{30'000};
  // How long closing may wait to flush unsent messages (ZMQ_LINGER).
  std::chrono::milliseconds linger{2'000};
  // A connection whose ZMTP/CURVE handshake has not completed by then is dropped
  // (ZMQ_HANDSHAKE_IVL); a Client also gives up connecting after this long.
  std::chrono::milliseconds handshake_timeout{10'000};
  // Messages queued per connection and direction (ZMQ_SNDHWM / ZMQ_RCVHWM). A full receive
  // queue pushes back on the sender through TCP, so a site cannot fill the aggregator's memory
  // with more than this many messages of at most max_message_bytes.
  int queue_messages = 16;
  // ZMTP heartbeats (ZMQ_HEARTBEAT_IVL / _TIMEOUT) detect dead connections; 0 switches them off.
  std::chrono::milliseconds heartbeat_interval{5'000};
  std::chrono::milliseconds heartbeat_timeout{30'000};
  // Kernel socket buffers (ZMQ_SNDBUF / ZMQ_RCVBUF) in bytes; 0 keeps the OS default, which
  // Linux grows by itself (tcp_wmem / tcp_rmem) and which a fixed size would cap.
  int send_buffer_bytes = 0;
  int receive_buffer_bytes = 0;
  // Keep the heap memory of large messages for the next ones instead of handing it back to the
  // kernel after each (glibc: M_MMAP_THRESHOLD 32 MiB, M_TRIM_THRESHOLD twice
  // codec.max_message_bytes, M_TOP_PAD 64 MiB). A fresh page costs a page fault per 4 KiB, about
  // 10 us on the README's benchmark VM: without this, faults took most of the time of a 100 MB
  // message, since libzmq allocates every received frame and the decoder every tensor. The
  // price: the process keeps its peak heap. Process-wide, set once by the first endpoint that
  // has it on.
  bool keep_freed_memory = true;
};

// A connected site as the ROUTER sees it: opaque, valid while that connection lasts. A site that
// reconnects gets a new Peer; use the latest one its messages came from.
struct Peer {
  std::string routing_id;
  auto operator<=>(const Peer&) const = default;
};

// Counters of one endpoint.
struct TransportStats {
  std::uint64_t messages_in = 0, messages_out = 0;
  std::uint64_t bytes_in = 0, bytes_out = 0;  // message frames (CURVE overhead not counted)
  std::uint64_t rejected = 0;                 // received but refused (Server only)
  std::map<ErrorCode, std::uint64_t> rejected_by_code;
};

class TransportError : public Error {
 public:
  using Error::Error;
};
// The other end could not be reached in time (not listening, network down).
class ConnectError : public TransportError {
 public:
  using TransportError::TransportError;
};
// The CURVE handshake failed: wrong pinned server key, key not in the aggregator's allow-list,
// or one side insecure and the other not.
class HandshakeError : public TransportError {
 public:
  using TransportError::TransportError;
};

// ---- aggregator side ------------------------------------------------------------------------

struct ServerOptions {
  // Where to listen: "tcp://0.0.0.0:5555", or "tcp://127.0.0.1:*" for an ephemeral port.
  std::string endpoint = "tcp://127.0.0.1:*";
  std::string server_id = "aggregator";  // sender id of what the server sends
  std::string federation_id;             // messages of any other federation are refused
  Security security = Security::kCurve;
  std::filesystem::path secret_key_file;  // kCurve: the aggregator's PREFIX.key
  std::filesystem::path allow_list_dir;   // kCurve: one SITE_ID.pub per admitted site
  SocketOptions socket;
};

struct Received {
  Peer peer;
  // Who sent it. kCurve: the site id the ZAP handler bound to the connection's key (the envelope
  // claimed the same, or it would have been refused). kInsecure: the unverified sender id.
  std::string site_id;
  Envelope envelope;
  Digest payload_sha256{};
  std::size_t wire_bytes = 0;
};

// A message the Server refused (it already replied with an Error and logged it).
struct Rejection {
  Peer peer;
  std::string site_id;  // authenticated id, or empty when unknown
  ErrorCode code = ErrorCode::kMalformed;
  std::string reason;
  std::size_t wire_bytes = 0;
};

class Server {
 public:
  // Validates the options, loads the key and the allow-list, starts the ZAP handler, binds.
  // Throws ppreid::Error (bad options, keys, allow-list) or TransportError (cannot bind).
  explicit Server(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound endpoint with its real port ("tcp://127.0.0.1:43017").
  const std::string& endpoint() const { return endpoint_; }
  const ServerOptions& options() const { return options_; }

  // The next valid message, or std::nullopt when none arrived within `timeout`. Messages that do
  // not decode, whose sender id is not the authenticated site id, or that belong to another
  // federation are answered with an Error message, logged, counted, passed to the rejection
  // observer, and never returned; the wait goes on until the deadline.
  std::optional<Received> receive(std::chrono::milliseconds timeout);

  // Sends `payload` for `round` to one peer. false when the peer is gone (disconnected) or did
  // not take the message within send_timeout (logged); throws ppreid::Error for a payload that
  // cannot be encoded. A `const Payload&` is copied into the message frames; a shared or moved
  // payload is not (encode_zero_copy): the frames point into its tensors and keep it alive until
  // libzmq has sent them, so it must not change meanwhile.
  bool send(const Peer& to, std::uint64_t round, const Payload& payload);
  bool send(const Peer& to, std::uint64_t round, std::shared_ptr<const Payload> payload);
  bool send(const Peer& to, std::uint64_t round, Payload&& payload);
  // Encodes once and sends to every peer (the frames are shared, not copied). Returns the peers
  // it could not reach.
  std::vector<Peer> send_to_all(const std::vector<Peer>& to, std::uint64_t round,
                                const Payload& payload);
  std::vector<Peer> send_to_all(const std::vector<Peer>& to, std::uint64_t round,
                                std::shared_ptr<const Payload> payload);
  std::vector<Peer> send_to_all(const std::vector<Peer>& to, std::uint64_t round,
                                Payload&& payload);

  // Re-reads allow_list_dir (kCurve; a site added or removed). Connections already admitted stay.
  void reload_allow_list();
  void set_rejection_observer(std::function<void(const Rejection&)> observer);
  const TransportStats& stats() const { return stats_; }
  // Connections the ZAP handler admitted / refused so far (0 in kInsecure mode).
  std::uint64_t admitted_connections() const;
  std::uint64_t refused_connections() const;

 private:
  EnvelopeRef envelope_for(std::uint64_t round, const Payload& payload) const;
  std::vector<zmq::message_t> encode_for(std::uint64_t round, const Payload& payload,
                                         std::shared_ptr<const Payload> owner) const;
  std::vector<Peer> send_frames_to_all(const std::vector<Peer>& to,
                                       std::vector<zmq::message_t>& frames, const char* what);
  bool send_frames(const Peer& to, std::vector<zmq::message_t>& frames, const char* what,
                   bool wait = true);
  void reject(const Peer& peer, const std::string& site_id, ErrorCode code,
              const std::string& reason, std::uint64_t round, std::size_t wire_bytes);

  ServerOptions options_;
  // Destroyed in reverse: socket, ZAP handler, context.
  zmq::context_t context_;
  std::unique_ptr<ZapHandler> zap_;
  zmq::socket_t socket_;
  std::string endpoint_;
  TransportStats stats_;
  std::function<void(const Rejection&)> on_reject_;
};

// ---- site side ------------------------------------------------------------------------------

struct ClientOptions {
  std::string endpoint;  // the aggregator: "tcp://aggregator.example.org:5555"
  std::string site_id;   // must be the stem of this site's .pub file in the allow-list
  std::string federation_id;
  Security security = Security::kCurve;
  std::filesystem::path secret_key_file;         // kCurve: this site's PREFIX.key
  std::filesystem::path server_public_key_file;  // kCurve: the aggregator's .pub (pinned)
  // Reconnection back-off after a lost connection (ZMQ_RECONNECT_IVL, doubling up to _MAX).
  std::chrono::milliseconds reconnect_interval{200};
  std::chrono::milliseconds reconnect_interval_max{10'000};
  SocketOptions socket;
};

class Client {
 public:
  // Validates the options, loads the keys, connects and waits until the handshake completes (at
  // most socket.handshake_timeout). Throws ppreid::Error (options, key files), ConnectError
  // (aggregator unreachable in time) or HandshakeError (wrong pinned server key, this site's key
  // refused, security mode mismatch) with a message that says which and what to do.
  explicit Client(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const ClientOptions& options() const { return options_; }
  // Whether the connection is up (as of the last socket event seen by send/receive/connected).
  bool connected();
  // Completed handshakes so far (1 after the constructor). It grows when libzmq reconnected
  // after a lost connection (an aggregator restart): a site should then say Hello again, since
  // the new aggregator process may not know it.
  std::uint64_t handshakes();

  // Sends `payload` for `round` as this site. Throws TransportError when the aggregator did not
  // take it within send_timeout (not connected, or restarting), HandshakeError when a reconnect
  // failed its handshake, ppreid::Error for a payload that cannot be encoded. A `const
  // Payload&` is copied into the message frames; a shared or moved payload is not (a model
  // update travels from its own memory): the frames keep it alive until libzmq has sent them,
  // so it must not change meanwhile.
  void send(std::uint64_t round, const Payload& payload);
  void send(std::uint64_t round, std::shared_ptr<const Payload> payload);
  void send(std::uint64_t round, Payload&& payload);

  // The next message from the aggregator, or std::nullopt when none arrived within `timeout`.
  // Throws DecodeError for a message that does not decode (the aggregator is authenticated, so
  // that is a real failure), TransportError for one of another federation, HandshakeError as
  // send().
  std::optional<Decoded> receive(std::chrono::milliseconds timeout);

  const TransportStats& stats() const { return stats_; }

 private:
  void wait_for_handshake();
  void send_encoded(std::vector<zmq::message_t>& frames, const char* what);
  void drain_events();                             // handles every pending monitor event
  void handle_event(const SocketMonitorEvent& e);  // throws HandshakeError for failures

  ClientOptions options_;
  std::string server_key_text_;  // the pinned key, for messages
  std::string public_key_text_;  // this site's public key, for messages
  zmq::context_t context_;
  zmq::socket_t socket_;
  std::unique_ptr<SocketMonitor> monitor_;
  bool connected_ = false;      // handshake completed, connection up
  std::uint64_t handshakes_ = 0;
  bool tcp_connected_ = false;  // a TCP connection was made at least once
  TransportStats stats_;
};

}  // namespace ppreid::proto
