#pragma once

// Data-parallel tests: W ranks as threads of the test process, each with its own c10d Gloo
// group over loopback (the same code path as ranks in separate processes or machines).

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <exception>
#include <functional>
#include <thread>
#include <vector>

#include "core/distributed/communicator.h"

namespace ppreid::testing {

// A TCP port nothing listens on right now (the kernel's choice, released again).
inline int free_tcp_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

inline dist::LaunchOptions loopback_launch(int world, int rank, int port,
                                           std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  dist::LaunchOptions o;
  o.world_size = world;
  o.rank = rank;
  o.host = "127.0.0.1";
  o.port = static_cast<std::uint16_t>(port);
  o.backend = dist::Backend::kGloo;
  o.timeout = timeout;
  return o;
}

// Runs body(comm) on `world` threads, one rank each; rethrows the first rank's exception.
inline void run_ranks(int world, const std::function<void(dist::Communicator&)>& body,
                      std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  const int port = free_tcp_port();
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(world));
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r)
    threads.emplace_back([&, r] {
      try {
        dist::Communicator comm(loopback_launch(world, r, port, timeout));
        body(comm);
      } catch (...) {
        errors[static_cast<std::size_t>(r)] = std::current_exception();
      }
    });
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace ppreid::testing
