#include "core/distributed/launch.h"

#include <cmath>
#include <cstdlib>
#include <limits>

#include "core/util/error.h"

namespace ppreid::dist {
namespace {

// A whole non-negative number no larger than `max`; nullopt for anything else.
std::optional<long long> whole_number(const std::string& text, long long max) {
  if (text.empty() || text.size() > 18) return std::nullopt;
  long long v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v > max) return std::nullopt;
  return v;
}

int env_int(const std::function<const char*(const char*)>& getenv, const char* name, int max) {
  const char* value = getenv(name);
  auto v = whole_number(value, max);
  if (!v)
    throw UsageError(std::string("environment variable ") + name + "='" + value +
                     "' is not a whole number in 0.." + std::to_string(max) +
                     "; fix it or pass the matching flag");
  return static_cast<int>(*v);
}

}  // namespace

Backend parse_backend(const std::string& name, const std::string& where) {
  if (name == "auto") return Backend::kAuto;
  if (name == "gloo") return Backend::kGloo;
  if (name == "nccl") return Backend::kNccl;
  throw UsageError(where + ": unknown backend '" + name + "'; use gloo, nccl or auto");
}

const char* backend_name(Backend backend) {
  switch (backend) {
    case Backend::kAuto:
      return "auto";
    case Backend::kGloo:
      return "gloo";
    case Backend::kNccl:
      return "nccl";
  }
  return "?";
}

bool nccl_compiled() {
#ifdef PPREID_WITH_NCCL
  return true;
#else
  return false;
#endif
}

Backend resolve_backend(Backend requested, bool model_on_cuda) {
  if (requested == Backend::kAuto)
    return model_on_cuda && nccl_compiled() ? Backend::kNccl : Backend::kGloo;
  if (requested == Backend::kNccl) {
    if (!nccl_compiled())
      throw UsageError(
          "--backend nccl: this binary was built without NCCL; rebuild with "
          "-DPPREID_WITH_NCCL=ON against a LibTorch with CUDA and NCCL, or use --backend gloo");
    if (!model_on_cuda)
      throw UsageError("--backend nccl needs the model on a CUDA device; this run trains on the "
                       "CPU, use --backend gloo (or auto)");
  }
  return requested;
}

void parse_rendezvous(const std::string& text, const std::string& where, LaunchOptions& out) {
  const auto colon = text.rfind(':');
  const std::string hint = "; give HOST:PORT, e.g. 10.0.0.5:29500 (rank 0's address)";
  if (colon == std::string::npos || colon == 0)
    throw UsageError(where + " '" + text + "' has no host and port" + hint);
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  auto port = whole_number(text.substr(colon + 1), 65535);
  if (host.empty() || !port || *port == 0)
    throw UsageError(where + " '" + text + "': the port must be a number in 1..65535" + hint);
  out.host = host;
  out.port = static_cast<std::uint16_t>(*port);
}

LaunchOptions resolve_launch(const LaunchFlags& flags,
                             const std::function<const char*(const char*)>& getenv_fn) {
  auto getenv = getenv_fn ? getenv_fn : [](const char* name) { return std::getenv(name); };
  LaunchOptions o;
  constexpr int kMaxWorld = 1 << 16;
  if (flags.world_size)
    o.world_size = *flags.world_size;
  else if (getenv("WORLD_SIZE"))
    o.world_size = env_int(getenv, "WORLD_SIZE", kMaxWorld);
  if (o.world_size < 1)
    throw UsageError("--world-size must be at least 1, got " + std::to_string(o.world_size));
  if (flags.rank)
    o.rank = *flags.rank;
  else if (getenv("RANK"))
    o.rank = env_int(getenv, "RANK", kMaxWorld);
  if (o.rank < 0 || o.rank >= o.world_size)
    throw UsageError("--rank " + std::to_string(o.rank) + " is outside 0.." +
                     std::to_string(o.world_size - 1) + " (world size " +
                     std::to_string(o.world_size) + "); ranks count from 0");

  if (flags.rendezvous) {
    parse_rendezvous(*flags.rendezvous, "--rendezvous", o);
  } else if (getenv("MASTER_ADDR") || getenv("MASTER_PORT")) {
    if (!getenv("MASTER_ADDR") || !getenv("MASTER_PORT"))
      throw UsageError("MASTER_ADDR and MASTER_PORT go together; set both or pass --rendezvous");
    parse_rendezvous(std::string(getenv("MASTER_ADDR")) + ":" + getenv("MASTER_PORT"),
                     "MASTER_ADDR:MASTER_PORT", o);
  } else if (o.world_size > 1) {
    throw UsageError("world size " + std::to_string(o.world_size) +
                     " needs a rendezvous address: pass --rendezvous HOST:PORT (rank 0's "
                     "address) or set MASTER_ADDR and MASTER_PORT");
  }

  o.backend = parse_backend(flags.backend, "--backend");
  if (flags.timeout_seconds) {
    const double s = *flags.timeout_seconds;
    if (!std::isfinite(s) || s <= 0 || s > 7 * 24 * 3600.0)
      throw UsageError("--dist-timeout must be in (0, 604800] seconds, got " + std::to_string(s));
    o.timeout = std::chrono::milliseconds(static_cast<long long>(std::ceil(s * 1000)));
  }
  return o;
}

}  // namespace ppreid::dist
