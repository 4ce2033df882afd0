#pragma once

#include <zmq.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "protocols/keys.h"

namespace ppreid::proto {

// The ZeroMQ authentication handler (ZAP, RFC 27) of a CURVE server: a REP socket bound to
// inproc://zeromq.zap.01 in the server's context, served by its own thread. It admits a client
// only when its CURVE public key is in the allow-list, and answers with the site id as the
// connection's User-Id, which ZeroMQ then attaches to every message from that connection
// (zmq_msg_gets "User-Id"). Refused keys are logged (the Z85 public key and the address; at most
// once per key every 10 s, with the number of attempts in between).
//
// Construct it before binding the server socket and destroy it after closing it: libzmq admits
// every CURVE client when no ZAP handler is bound in the context. One per context.
class ZapHandler {
 public:
  ZapHandler(zmq::context_t& context, AllowList allow_list);
  ~ZapHandler();
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  // Replaces the allow-list; connections already admitted stay connected.
  void set_allow_list(AllowList allow_list);

  std::uint64_t admitted() const { return admitted_; }
  std::uint64_t refused() const { return refused_; }

 private:
  void run();
  void handle_request();

  zmq::socket_t socket_;   // REP, inproc://zeromq.zap.01; used by the thread only
  zmq::socket_t wake_rx_;  // PAIR; the destructor sends one message to stop the thread
  zmq::socket_t wake_tx_;
  std::mutex allow_mutex_;
  std::shared_ptr<const AllowList> allow_list_;
  std::atomic<std::uint64_t> admitted_{0}, refused_{0};
  struct RefusalLog {
    std::chrono::steady_clock::time_point last;
    std::uint64_t suppressed = 0;
  };
  std::map<std::string, RefusalLog> refusal_log_;  // by Z85 key; the thread's only
  std::thread thread_;
};

}  // namespace ppreid::proto
