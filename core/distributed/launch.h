#pragma once

// How one process of a data-parallel site finds the others: world size, rank, the rendezvous
// address (rank 0's TCPStore) and the collective backend. Flags win over the torchrun-style
// environment (WORLD_SIZE, RANK, MASTER_ADDR, MASTER_PORT).

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace ppreid::dist {

enum class Backend { kAuto, kGloo, kNccl };

// "gloo", "nccl", "auto" -> Backend; anything else is a UsageError naming `where`.
Backend parse_backend(const std::string& name, const std::string& where);
const char* backend_name(Backend backend);

// True when this binary was built with the NCCL backend (-DPPREID_WITH_NCCL=ON).
bool nccl_compiled();

// What auto means here: NCCL when the model runs on CUDA and NCCL is compiled in, else Gloo.
// Asking for NCCL in a build without it, or for a model on the CPU, is a UsageError that says how
// to get it.
Backend resolve_backend(Backend requested, bool model_on_cuda);

struct LaunchOptions {
  int world_size = 1;
  int rank = 0;
  std::string host = "127.0.0.1";  // rank 0's address, where the TCPStore listens
  std::uint16_t port = 29500;
  Backend backend = Backend::kAuto;
  // How long rendezvous and every collective may wait for the other ranks before this rank
  // fails with an error (a dead or stuck peer).
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};

  bool distributed() const { return world_size > 1; }
  std::string rendezvous() const { return host + ":" + std::to_string(port); }
};

// "HOST:PORT" (also "[v6]:PORT"); a UsageError naming `where` otherwise.
void parse_rendezvous(const std::string& text, const std::string& where, LaunchOptions& out);

// The flags as given on a command line; unset ones fall back to the environment.
struct LaunchFlags {
  std::optional<int> world_size, rank;
  std::optional<std::string> rendezvous;
  std::string backend = "auto";
  std::optional<double> timeout_seconds;
};

// Merges flags with the environment read through `getenv` (std::getenv by default; tests pass
// their own) and checks the result: 1 <= world size, 0 <= rank < world size, a rendezvous
// address when the world size is above 1. Errors are UsageErrors naming the flag or variable.
LaunchOptions resolve_launch(const LaunchFlags& flags,
                             const std::function<const char*(const char*)>& getenv = nullptr);

}  // namespace ppreid::dist
