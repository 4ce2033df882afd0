#include "protocols/transport.h"

#include <spdlog/spdlog.h>
#include <zmq_addon.hpp>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <mutex>
#include <utility>

#include "protocols/text.h"
#include "protocols/transport_info.h"
#include "protocols/zap_handler.h"

namespace ppreid::proto {
namespace {

// zmq_poll, except that a signal (SIGINT/SIGTERM asking a daemon to stop) counts as "nothing
// arrived" instead of an exception: the caller returns to its loop and sees its stop flag.
int poll_interruptible(zmq::pollitem_t* items, std::size_t count, std::chrono::milliseconds timeout) {
  try {
    return zmq::poll(items, count, timeout);
  } catch (const zmq::error_t& e) {
    if (e.num() == EINTR) return 0;
    throw;
  }
}

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr const char* kZapDomain = "ppreid";

int ms(milliseconds d) { return static_cast<int>(d.count()); }

void validate_socket_options(const SocketOptions& o) {
  validate(o.codec);
  if (o.send_timeout.count() < 0 || o.linger.count() < 0)
    throw Error("send_timeout and linger must be >= 0 ms");
  if (o.handshake_timeout.count() <= 0) throw Error("handshake_timeout must be > 0 ms");
  if (o.queue_messages < 1) throw Error("queue_messages must be >= 1");
  if (o.send_buffer_bytes < 0 || o.receive_buffer_bytes < 0)
    throw Error("send_buffer_bytes and receive_buffer_bytes must be >= 0 (0: the OS default)");
  if (o.heartbeat_interval.count() < 0 || o.heartbeat_timeout.count() < 0)
    throw Error("heartbeat_interval and heartbeat_timeout must be >= 0 ms");
}

// SocketOptions::keep_freed_memory. glibc hands the pages of freed large blocks back to the
// kernel three ways: a block over the mmap threshold is unmapped, the top of a heap over the trim
// threshold is trimmed, and a thread arena's 64 MiB heap that became entirely free is unmapped
// unless the top pad covers it (libzmq's I/O thread allocates every received frame in its own
// arena, and a 100 MB message frees a whole heap of them at once). The next message of the same
// size then page-faults all of it in again. Fixed thresholds (which also stop glibc adjusting
// the mmap threshold itself) and a 64 MiB top pad keep the pages; the pad only reserves address
// space, it is not touched.
void retain_freed_heap(const SocketOptions& o) {
#if defined(__GLIBC__)
  static std::once_flag once;
  std::call_once(once, [&] {
    constexpr int kMmapThreshold = 32 << 20;  // glibc's largest (HEAP_MAX_SIZE / 2 on 64-bit)
    constexpr int kTopPad = 64 << 20;         // a thread arena's heap (HEAP_MAX_SIZE)
    const auto trim = std::min<std::size_t>(2 * o.codec.max_message_bytes,
                                            std::numeric_limits<int>::max());
    if (mallopt(M_MMAP_THRESHOLD, kMmapThreshold) != 1 ||
        mallopt(M_TRIM_THRESHOLD, static_cast<int>(trim)) != 1 ||
        mallopt(M_TOP_PAD, kTopPad) != 1)
      spdlog::warn("cannot set glibc's malloc thresholds; large messages will page-fault more");
  });
#else
  (void)o;
#endif
}

void apply(zmq::socket_t& s, const SocketOptions& o) {
  if (o.keep_freed_memory) retain_freed_heap(o);
  if (o.send_buffer_bytes > 0) s.set(zmq::sockopt::sndbuf, o.send_buffer_bytes);
  if (o.receive_buffer_bytes > 0) s.set(zmq::sockopt::rcvbuf, o.receive_buffer_bytes);
  s.set(zmq::sockopt::linger, ms(o.linger));
  s.set(zmq::sockopt::sndtimeo, ms(o.send_timeout));
  s.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(o.codec.max_message_bytes));
  s.set(zmq::sockopt::handshake_ivl, ms(o.handshake_timeout));
  s.set(zmq::sockopt::sndhwm, o.queue_messages);
  s.set(zmq::sockopt::rcvhwm, o.queue_messages);
  if (o.heartbeat_interval.count() > 0) {
    s.set(zmq::sockopt::heartbeat_ivl, ms(o.heartbeat_interval));
    s.set(zmq::sockopt::heartbeat_timeout, ms(o.heartbeat_timeout));
    s.set(zmq::sockopt::heartbeat_ttl, ms(o.heartbeat_timeout));
  }
}

void require_id(const char* option, const std::string& id) {
  if (!is_valid_id(id))
    throw Error(std::string(option) + " '" + printable_for_log(id) + "' is not a valid id (1.." +
                std::to_string(kMaxIdBytes) + " characters of A-Z a-z 0-9 . _ -)");
}

void warn_insecure(const char* role, const std::string& endpoint) {
  spdlog::warn("**************************************************************************");
  spdlog::warn("* INSECURE MODE ({} at {}): no CURVE encryption, no authentication.", role,
               endpoint);
  spdlog::warn("* Anyone on the network can read the model updates and send in any site's");
  spdlog::warn("* name. Use only for local experiments; never across machines.");
  spdlog::warn("**************************************************************************");
}

const char* type_name(const Payload& payload) { return to_string(type_of(payload)); }

std::size_t frames_bytes(const std::vector<zmq::message_t>& frames) {
  std::size_t n = 0;
  for (const auto& f : frames) n += f.size();
  return n;
}

// Sends all frames as one message; the first part waits at most the socket's send timeout, or
// not at all when `wait` is false. Returns false when the first part was not taken (EAGAIN);
// later parts of a multipart message always go through.
bool send_multipart_frames(zmq::socket_t& socket, std::vector<zmq::message_t>& frames,
                           bool wait = true) {
  for (std::size_t i = 0; i < frames.size(); ++i) {
    const bool last = i + 1 == frames.size();
    auto flags = last ? zmq::send_flags::none : zmq::send_flags::sndmore;
    if (i == 0 && !wait) flags = flags | zmq::send_flags::dontwait;
    if (!socket.send(frames[i], flags)) {
      if (i == 0) return false;
      throw TransportError("ZeroMQ refused part " + std::to_string(i) + " of a message");
    }
  }
  return true;
}

}  // namespace

// ---- socket monitor (client side) -----------------------------------------------------------

// The monitor events of one socket, read from an inproc PAIR socket (zmq_socket_monitor).
class SocketMonitor {
 public:
  using Event = SocketMonitorEvent;

  SocketMonitor(zmq::context_t& context, zmq::socket_t& target, int events)
      : target_(target), pair_(context, zmq::socket_type::pair) {
    char addr[64];
    std::snprintf(addr, sizeof addr, "inproc://ppreid-monitor-%p", static_cast<void*>(this));
    if (zmq_socket_monitor(target.handle(), addr, events) != 0)
      throw TransportError(std::string("cannot monitor a ZeroMQ socket: ") +
                           zmq_strerror(zmq_errno()));
    pair_.set(zmq::sockopt::linger, 0);
    pair_.connect(addr);
  }
  ~SocketMonitor() { zmq_socket_monitor(target_.handle(), nullptr, 0); }

  // The next event, or nullopt after `timeout`.
  std::optional<Event> next(milliseconds timeout) {
    zmq::pollitem_t item{pair_.handle(), 0, ZMQ_POLLIN, 0};
    if (poll_interruptible(&item, 1, timeout) == 0) return std::nullopt;
    std::vector<zmq::message_t> parts;
    if (!zmq::recv_multipart(pair_, std::back_inserter(parts), zmq::recv_flags::dontwait) ||
        parts.size() < 2 || parts[0].size() < 6)
      return std::nullopt;
    Event e;
    std::memcpy(&e.event, parts[0].data(), sizeof e.event);
    std::memcpy(&e.value, static_cast<const char*>(parts[0].data()) + 2, sizeof e.value);
    e.endpoint = parts[1].to_string();
    return e;
  }

  zmq::socket_t& pair() { return pair_; }

 private:
  zmq::socket_t& target_;
  zmq::socket_t pair_;
};

// ---- Server ---------------------------------------------------------------------------------

Server::Server(ServerOptions options) : options_(std::move(options)) {
  validate_socket_options(options_.socket);
  require_id("server_id", options_.server_id);
  require_id("federation_id", options_.federation_id);
  std::optional<KeyPair> keys;
  std::size_t allowed_sites = 0;
  if (options_.security == Security::kCurve) {
    require_curve();
    if (options_.secret_key_file.empty())
      throw Error("the aggregator needs its secret key file (create one with `ppreid keygen "
                  "--out PREFIX`), or insecure mode for local experiments");
    if (options_.allow_list_dir.empty())
      throw Error("the aggregator needs an allow-list directory of SITE_ID.pub files");
    keys.emplace(read_secret_key(options_.secret_key_file));
    AllowList allow_list = AllowList::load(options_.allow_list_dir);
    allowed_sites = allow_list.size();
    // Bound before the server socket exists: libzmq admits everybody when no handler is bound.
    zap_ = std::make_unique<ZapHandler>(context_, std::move(allow_list));
  }
  socket_ = zmq::socket_t(context_, zmq::socket_type::router);
  apply(socket_, options_.socket);
  socket_.set(zmq::sockopt::router_mandatory, 1);
  if (keys) {
    socket_.set(zmq::sockopt::curve_server, 1);
    socket_.set(zmq::sockopt::curve_secretkey, keys->secret_key.z85());
    socket_.set(zmq::sockopt::zap_domain, kZapDomain);
  }
  try {
    socket_.bind(options_.endpoint);
  } catch (const zmq::error_t& e) {
    throw TransportError("cannot listen on '" + options_.endpoint + "': " + e.what());
  }
  endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
  if (keys)
    spdlog::info("aggregator listening on {} (CURVE, public key {}, {} sites in the allow-list)",
                 endpoint_, keys->public_key.z85(), allowed_sites);
  else
    warn_insecure("aggregator", endpoint_);
}

Server::~Server() = default;

void Server::reload_allow_list() {
  if (!zap_) return;
  AllowList list = AllowList::load(options_.allow_list_dir);
  spdlog::info("allow-list reloaded: {} sites", list.size());
  zap_->set_allow_list(std::move(list));
}

void Server::set_rejection_observer(std::function<void(const Rejection&)> observer) {
  on_reject_ = std::move(observer);
}

std::uint64_t Server::admitted_connections() const { return zap_ ? zap_->admitted() : 0; }
std::uint64_t Server::refused_connections() const { return zap_ ? zap_->refused() : 0; }

EnvelopeRef Server::envelope_for(std::uint64_t round, const Payload& payload) const {
  return EnvelopeRef{kProtocolVersion, options_.federation_id, round, options_.server_id, payload};
}

bool Server::send_frames(const Peer& to, std::vector<zmq::message_t>& frames, const char* what,
                         bool wait) {
  std::vector<zmq::message_t> message;
  message.reserve(frames.size() + 1);
  message.emplace_back(to.routing_id.data(), to.routing_id.size());
  for (zmq::message_t& f : frames) message.emplace_back().copy(f);  // shares large buffers
  const std::size_t bytes = frames_bytes(frames);
  try {
    if (!send_multipart_frames(socket_, message, wait)) {
      spdlog::warn("{} not delivered: the peer did not take it {}", what,
                   wait ? "within " + std::to_string(options_.socket.send_timeout.count()) + " ms"
                        : "(its queue is full)");
      return false;
    }
  } catch (const zmq::error_t& e) {
    if (e.num() == EHOSTUNREACH) {
      spdlog::warn("{} not delivered: the peer is no longer connected", what);
      return false;
    }
    throw TransportError(std::string("cannot send ") + what + ": " + e.what());
  }
  ++stats_.messages_out;
  stats_.bytes_out += bytes;
  return true;
}

std::vector<zmq::message_t> Server::encode_for(std::uint64_t round, const Payload& payload,
                                               std::shared_ptr<const Payload> owner) const {
  return encode_zero_copy(envelope_for(round, payload), std::move(owner), options_.socket.codec);
}

bool Server::send(const Peer& to, std::uint64_t round, const Payload& payload) {
  std::vector<zmq::message_t> frames = encode_for(round, payload, nullptr);
  return send_frames(to, frames, type_name(payload));
}

bool Server::send(const Peer& to, std::uint64_t round, std::shared_ptr<const Payload> payload) {
  if (!payload) throw Error("Server::send: no payload");
  std::vector<zmq::message_t> frames = encode_for(round, *payload, payload);
  return send_frames(to, frames, type_name(*payload));
}

bool Server::send(const Peer& to, std::uint64_t round, Payload&& payload) {
  return send(to, round, std::make_shared<const Payload>(std::move(payload)));
}

std::vector<Peer> Server::send_to_all(const std::vector<Peer>& to, std::uint64_t round,
                                      const Payload& payload) {
  std::vector<zmq::message_t> frames = encode_for(round, payload, nullptr);
  return send_frames_to_all(to, frames, type_name(payload));
}

std::vector<Peer> Server::send_to_all(const std::vector<Peer>& to, std::uint64_t round,
                                      std::shared_ptr<const Payload> payload) {
  if (!payload) throw Error("Server::send_to_all: no payload");
  std::vector<zmq::message_t> frames = encode_for(round, *payload, payload);
  return send_frames_to_all(to, frames, type_name(*payload));
}

std::vector<Peer> Server::send_to_all(const std::vector<Peer>& to, std::uint64_t round,
                                      Payload&& payload) {
  return send_to_all(to, round, std::make_shared<const Payload>(std::move(payload)));
}

std::vector<Peer> Server::send_frames_to_all(const std::vector<Peer>& to,
                                             std::vector<zmq::message_t>& frames,
                                             const char* what) {
  std::vector<Peer> missed;
  for (const Peer& p : to)
    if (!send_frames(p, frames, what)) missed.push_back(p);
  return missed;
}

void Server::reject(const Peer& peer, const std::string& site_id, ErrorCode code,
                    const std::string& reason, std::uint64_t round, std::size_t wire_bytes) {
  ++stats_.rejected;
  ++stats_.rejected_by_code[code];
  const std::string who = site_id.empty() ? "an unidentified peer" : "site '" + site_id + "'";
  spdlog::warn("refused a message from {} ({}): {}", who, to_string(code),
               printable_for_log(reason, 1024));
  try {
    // Never waits: a peer that sends junk and does not read must not stall the server.
    const Payload reply = ErrorMessage{code, printable_for_log(reason, kMaxTextBytes - 16)};
    std::vector<zmq::message_t> frames = encode_for(round, reply, nullptr);
    send_frames(peer, frames, "Error reply", /*wait=*/false);
  } catch (const std::exception& e) {
    spdlog::warn("cannot send the Error reply to {}: {}", who, e.what());
  }
  if (on_reject_) on_reject_(Rejection{peer, site_id, code, reason, wire_bytes});
}

std::optional<Received> Server::receive(milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    if (poll_interruptible(&item, 1, std::max(left, milliseconds(0))) == 0) return std::nullopt;

    std::vector<zmq::message_t> parts;
    if (!zmq::recv_multipart(socket_, std::back_inserter(parts), zmq::recv_flags::dontwait))
      continue;
    const std::size_t wire_bytes = frames_bytes(parts) - parts[0].size();
    ++stats_.messages_in;
    stats_.bytes_in += wire_bytes;
    Peer peer{parts[0].to_string()};
    if (parts.size() < 2) {
      reject(peer, "", ErrorCode::kMalformed, "an empty message (no frames)", 0, 0);
      continue;
    }
    std::string site_id;
    if (options_.security == Security::kCurve) {
      // Set by our ZAP handler for this connection; absent would mean no authentication took
      // place, so fail closed.
      const char* user = zmq_msg_gets(parts[1].handle(), "User-Id");
      if (!user || !*user) {
        reject(peer, "", ErrorCode::kUnauthorized,
               "the connection carries no authenticated site id", 0, wire_bytes);
        continue;
      }
      site_id = user;
    }
    const std::vector<FrameView> views =
        frame_views(std::span<const zmq::message_t>(parts).subspan(1));
    Decoded decoded;
    try {
      decoded = decode(views, options_.socket.codec);
    } catch (const DecodeError& e) {
      reject(peer, site_id, e.error_code(), e.what(), 0, wire_bytes);
      continue;
    }
    Envelope& env = decoded.envelope;
    const char* type = to_string(env.type());
    if (options_.security == Security::kCurve && env.sender_id != site_id) {
      reject(peer, site_id, ErrorCode::kUnauthorized,
             std::string(type) + " claims sender id '" + env.sender_id +
                 "' but the connection authenticated as site '" + site_id + "'",
             env.round, wire_bytes);
      continue;
    }
    if (options_.security == Security::kInsecure) site_id = env.sender_id;
    if (env.federation_id != options_.federation_id) {
      reject(peer, site_id, ErrorCode::kWrongFederation,
             std::string(type) + " is for federation '" + env.federation_id +
                 "', this aggregator serves '" + options_.federation_id + "'",
             env.round, wire_bytes);
      continue;
    }
    spdlog::debug("received {} for round {} from site '{}' ({} bytes)", type, env.round, site_id,
                  wire_bytes);
    return Received{std::move(peer), std::move(site_id), std::move(env), decoded.payload_sha256,
                    wire_bytes};
  }
}

// ---- Client ---------------------------------------------------------------------------------

namespace {

constexpr int kClientEvents = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED |
                              ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                              ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;

std::string protocol_error_text(std::uint32_t value) {
  switch (value) {
    case ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
      return "the two ends use different security mechanisms (one of them is in insecure mode)";
    case ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
      return "a cryptographic check failed (wrong key)";
    default: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "ZMTP protocol error 0x%08x", value);
      return buf;
    }
  }
}

}  // namespace

Client::Client(ClientOptions options) : options_(std::move(options)) {
  validate_socket_options(options_.socket);
  require_id("site_id", options_.site_id);
  require_id("federation_id", options_.federation_id);
  if (options_.endpoint.empty()) throw Error("the aggregator endpoint is empty");
  if (options_.reconnect_interval.count() <= 0 ||
      options_.reconnect_interval_max < options_.reconnect_interval)
    throw Error("reconnect_interval must be > 0 and <= reconnect_interval_max");
  socket_ = zmq::socket_t(context_, zmq::socket_type::dealer);
  apply(socket_, options_.socket);
  socket_.set(zmq::sockopt::immediate, 1);  // queue only on a completed connection
  socket_.set(zmq::sockopt::reconnect_ivl, ms(options_.reconnect_interval));
  socket_.set(zmq::sockopt::reconnect_ivl_max, ms(options_.reconnect_interval_max));
  if (options_.security == Security::kCurve) {
    require_curve();
    if (options_.secret_key_file.empty() || options_.server_public_key_file.empty())
      throw Error("a site needs its secret key file and the aggregator's public key file "
                  "(CURVE), or insecure mode for local experiments");
    KeyPair mine = read_secret_key(options_.secret_key_file);
    PublicKey server = read_public_key(options_.server_public_key_file);
    server_key_text_ = server.z85();
    socket_.set(zmq::sockopt::curve_serverkey, server.z85());
    socket_.set(zmq::sockopt::curve_publickey, mine.public_key.z85());
    public_key_text_ = mine.public_key.z85();
    socket_.set(zmq::sockopt::curve_secretkey, mine.secret_key.z85());
  } else {
    warn_insecure("site", options_.endpoint);
  }
  monitor_ = std::make_unique<SocketMonitor>(context_, socket_, kClientEvents);
  try {
    socket_.connect(options_.endpoint);
  } catch (const zmq::error_t& e) {
    throw TransportError("cannot connect to '" + options_.endpoint + "': " + e.what());
  }
  wait_for_handshake();
}

Client::~Client() = default;

void Client::handle_event(const SocketMonitorEvent& e) {
  const std::string where = "the aggregator at " + options_.endpoint;
  switch (e.event) {
    case ZMQ_EVENT_CONNECTED:
      tcp_connected_ = true;
      return;
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
      ++handshakes_;
      if (!connected_)
        spdlog::info("site '{}' connected to {}{}", options_.site_id, where,
                     options_.security == Security::kCurve ? " (CURVE)" : " (INSECURE)");
      connected_ = true;
      return;
    case ZMQ_EVENT_DISCONNECTED:
      if (connected_) spdlog::warn("lost the connection to {}; reconnecting", where);
      connected_ = false;
      return;
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
      throw HandshakeError(where + " refused this site's key (ZAP status " +
                           std::to_string(e.value) + "): its allow-list has no '" +
                           options_.site_id + ".pub' holding this site's public key " +
                           public_key_text_ +
                           "; ask the aggregator's operator to add this site's .pub file");
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
      throw HandshakeError("the handshake with " + where +
                           " failed: " + protocol_error_text(e.value));
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
      if (options_.security == Security::kCurve)
        throw HandshakeError(
            "the CURVE handshake with " + where +
            " failed: the aggregator closed the connection during the handshake. The pinned "
            "aggregator public key " + server_key_text_ + " (from '" +
            options_.server_public_key_file.string() +
            "') is most likely not the aggregator's key: get its .pub file from its operator "
            "again (or the aggregator runs in insecure mode, without CURVE)");
      throw HandshakeError("the handshake with " + where +
                           " failed: the aggregator closed the connection during the handshake "
                           "(does it require CURVE? this site runs in insecure mode)");
    default:
      return;
  }
}

void Client::drain_events() {
  while (auto e = monitor_->next(milliseconds(0))) handle_event(*e);
}

bool Client::connected() {
  drain_events();
  return connected_;
}

std::uint64_t Client::handshakes() {
  drain_events();
  return handshakes_;
}

void Client::wait_for_handshake() {
  const auto deadline = Clock::now() + options_.socket.handshake_timeout;
  const std::string where = "the aggregator at " + options_.endpoint;
  const std::string limit = std::to_string(options_.socket.handshake_timeout.count()) + " ms";
  while (!connected_) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    std::optional<SocketMonitorEvent> e;
    if (left.count() > 0) e = monitor_->next(left);
    if (!e) {
      if (!tcp_connected_)
        throw ConnectError("cannot reach " + where + " within " + limit +
                           ": is it running, and is the address right?");
      throw HandshakeError("connected to " + where + " but the handshake did not complete "
                           "within " + limit + ": is it a ppreid aggregator?");
    }
    handle_event(*e);  // throws for a failed handshake
  }
}

void Client::send(std::uint64_t round, const Payload& payload) {
  drain_events();
  std::vector<zmq::message_t> frames = encode(
      EnvelopeRef{kProtocolVersion, options_.federation_id, round, options_.site_id, payload},
      options_.socket.codec);
  send_encoded(frames, type_name(payload));
}

void Client::send(std::uint64_t round, std::shared_ptr<const Payload> payload) {
  if (!payload) throw Error("Client::send: no payload");
  drain_events();
  std::vector<zmq::message_t> frames = encode_zero_copy(
      EnvelopeRef{kProtocolVersion, options_.federation_id, round, options_.site_id, *payload},
      payload, options_.socket.codec);
  send_encoded(frames, type_name(*payload));
}

void Client::send(std::uint64_t round, Payload&& payload) {
  send(round, std::make_shared<const Payload>(std::move(payload)));
}

void Client::send_encoded(std::vector<zmq::message_t>& frames, const char* what) {
  const std::size_t bytes = frames_bytes(frames);
  bool sent = false;
  try {
    sent = send_multipart_frames(socket_, frames);
  } catch (const zmq::error_t& err) {
    throw TransportError(std::string("cannot send ") + what + " to the aggregator: " + err.what());
  }
  if (!sent) {
    drain_events();  // a failed re-handshake explains it better
    throw TransportError(std::string("cannot send ") + what +
                         " to the aggregator at " + options_.endpoint + " within " +
                         std::to_string(options_.socket.send_timeout.count()) +
                         " ms: not connected (it may be down or restarting)");
  }
  ++stats_.messages_out;
  stats_.bytes_out += bytes;
}

std::optional<Decoded> Client::receive(milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    std::array<zmq::pollitem_t, 2> items{{{socket_.handle(), 0, ZMQ_POLLIN, 0},
                                          {monitor_->pair().handle(), 0, ZMQ_POLLIN, 0}}};
    if (poll_interruptible(items.data(), items.size(), std::max(left, milliseconds(0))) == 0)
      return std::nullopt;
    if (items[1].revents & ZMQ_POLLIN) drain_events();
    if (!(items[0].revents & ZMQ_POLLIN)) continue;
    std::vector<zmq::message_t> parts;
    if (!zmq::recv_multipart(socket_, std::back_inserter(parts), zmq::recv_flags::dontwait))
      continue;
    ++stats_.messages_in;
    stats_.bytes_in += frames_bytes(parts);
    Decoded d = decode(frame_views(parts), options_.socket.codec);
    if (d.envelope.federation_id != options_.federation_id)
      throw TransportError("the aggregator at " + options_.endpoint + " sent a message (" +
                           to_string(d.envelope.type()) + ") of federation '" +
                           d.envelope.federation_id + "', this site belongs to '" +
                           options_.federation_id + "': check both configurations");
    return d;
  }
}

}  // namespace ppreid::proto
