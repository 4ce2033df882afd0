#include "core/distributed/communicator.h"

// c10d's Gloo header is guarded by the macro LibTorch's own build defines; Debian's LibTorch has
// Gloo built in, so it is defined here, for this file only (nothing else sees c10d).
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif
#include <spdlog/spdlog.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "core/util/error.h"

namespace ppreid::dist {
namespace {

bool is_loopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

// The interface Gloo's peers reach this rank on. One machine (a loopback rendezvous) stays on
// loopback; otherwise GLOO_SOCKET_IFNAME names it (as in PyTorch), else the host name's address.
std::shared_ptr<::gloo::transport::Device> make_device(const std::string& host) {
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
    return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
  if (is_loopback(host)) return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

std::string first_line(const std::string& text) {
  const auto end = text.find('\n');
  return end == std::string::npos ? text : text.substr(0, end);
}

std::string seconds(std::chrono::milliseconds ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g s", static_cast<double>(ms.count()) / 1000.0);
  return buf;
}

}  // namespace

struct Communicator::Group {
  c10::intrusive_ptr<c10d::TCPStore> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
};

std::string collective_failure(const std::string& what, const LaunchOptions& options,
                               const std::string& cause) {
  return what + " failed on rank " + std::to_string(options.rank) + " of " +
         std::to_string(options.world_size) + " (rendezvous " + options.rendezvous() +
         "): another rank died, stopped answering within " + seconds(options.timeout) +
         " or disagreed on the call (" + first_line(cause) +
         "); stop every rank, fix the cause in its log, and restart all of them (with --resume "
         "to continue from the last checkpoint)";
}

Communicator::Communicator(const LaunchOptions& options) : options_(options) {
  if (options.world_size < 1 || options.rank < 0 || options.rank >= options.world_size)
    throw Error("Communicator: rank " + std::to_string(options.rank) + " is outside world size " +
                std::to_string(options.world_size));
  if (resolve_backend(options.backend, /*model_on_cuda=*/false) != Backend::kGloo)
    throw Error("Communicator: only the gloo backend runs on the CPU");
  group_ = std::make_unique<Group>();
  const std::string where = "rendezvous at " + options.rendezvous() + " (rank " +
                            std::to_string(options.rank) + " of " +
                            std::to_string(options.world_size) + ")";
  try {
    c10d::TCPStoreOptions store_options;
    store_options.port = options.port;
    store_options.isServer = options.rank == 0;
    store_options.numWorkers = static_cast<std::size_t>(options.world_size);
    store_options.waitWorkers = true;
    store_options.timeout = options.timeout;
    group_->store = c10::make_intrusive<c10d::TCPStore>(options.host, store_options);
  } catch (const std::exception& e) {
    throw Error(where + " failed: " + first_line(e.what()) +
                (options.rank == 0
                     ? "; is the port already in use, or did the other ranks not start within " +
                           seconds(options.timeout) + "? Start every rank with the same "
                           "--world-size and --rendezvous"
                     : "; is rank 0 running and listening there, reachable from this machine, "
                       "and started within " + seconds(options.timeout) + "?"));
  }
  try {
    auto gloo_options = c10d::ProcessGroupGloo::Options::create(options.timeout);
    gloo_options->devices.push_back(make_device(options.host));
    gloo_options->threads = 2;
    group_->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(
        group_->store, options.rank, options.world_size, gloo_options);
  } catch (const std::exception& e) {
    throw Error(where + ": the " + std::to_string(options.world_size) +
                " ranks did not all join the Gloo group within " + seconds(options.timeout) +
                " (" + first_line(e.what()) + "); start every rank with the same --world-size "
                "and --rendezvous, and across machines set GLOO_SOCKET_IFNAME to the network "
                "interface the ranks reach each other on");
  }
  spdlog::debug("rank {} of {} joined the Gloo group at {}", options.rank, options.world_size,
                options.rendezvous());
}

Communicator::~Communicator() = default;

void PendingReduce::wait() {
  if (!wait_) return;
  auto w = std::move(wait_);
  wait_ = nullptr;
  w();
}

namespace {

void wait_for(const c10::intrusive_ptr<c10d::Work>& work, const std::string& what,
              const LaunchOptions& options) {
  try {
    work->wait(options.timeout);
  } catch (const std::exception& e) {
    throw CollectiveError(collective_failure(what, options, e.what()));
  }
}

// Starts a collective and waits for it; a failure to start or to finish becomes one Error.
template <class Launch>
void run(const std::string& what, const LaunchOptions& options, Launch launch) {
  c10::intrusive_ptr<c10d::Work> work;
  try {
    work = launch();
  } catch (const std::exception& e) {
    throw CollectiveError(collective_failure(what, options, e.what()));
  }
  wait_for(work, what, options);
}

}  // namespace

void Communicator::all_reduce_sum(torch::Tensor& tensor, const std::string& what) {
  all_reduce_sum_async(tensor, what).wait();
}

PendingReduce Communicator::all_reduce_sum_async(torch::Tensor tensor, const std::string& what) {
  if (!tensor.is_contiguous())
    throw Error(what + ": all-reduce needs a contiguous tensor (call .contiguous())");
  std::vector<at::Tensor> tensors{tensor};
  c10::intrusive_ptr<c10d::Work> work;
  try {
    work = group_->gloo->allreduce(tensors, c10d::AllreduceOptions{});
  } catch (const std::exception& e) {
    throw CollectiveError(collective_failure(what, options_, e.what()));
  }
  PendingReduce pending;
  const LaunchOptions options = options_;
  pending.wait_ = [work, what, options] { wait_for(work, what, options); };
  return pending;
}

void Communicator::broadcast(torch::Tensor& tensor, int root, const std::string& what) {
  if (!tensor.is_contiguous())
    throw Error(what + ": broadcast needs a contiguous tensor (call .contiguous())");
  std::vector<at::Tensor> tensors{tensor};
  c10d::BroadcastOptions opts;
  opts.rootRank = root;
  run(what, options_, [&] { return group_->gloo->broadcast(tensors, opts); });
}

torch::Tensor Communicator::all_gather_rows(const torch::Tensor& rows, const std::string& what) {
  const int w = world_size();
  // Row counts first, so blocks of different lengths can travel padded to the longest.
  torch::Tensor count = torch::tensor({rows.size(0)}, torch::kInt64);
  std::vector<std::vector<at::Tensor>> counts(1);
  for (int r = 0; r < w; ++r) counts[0].push_back(torch::empty({1}, torch::kInt64));
  std::vector<at::Tensor> count_in{count};
  run(what + " (row counts)", options_,
      [&] { return group_->gloo->allgather(counts, count_in); });
  std::int64_t longest = 0;
  for (auto& c : counts[0]) longest = std::max(longest, c.item<std::int64_t>());
  auto padded_sizes = rows.sizes().vec();
  padded_sizes[0] = longest;
  torch::Tensor padded = torch::zeros(padded_sizes, rows.options());
  if (rows.size(0) > 0) padded.narrow(0, 0, rows.size(0)).copy_(rows);
  std::vector<std::vector<at::Tensor>> blocks(1);
  for (int r = 0; r < w; ++r) blocks[0].push_back(torch::empty(padded_sizes, rows.options()));
  std::vector<at::Tensor> block_in{padded};
  run(what, options_, [&] { return group_->gloo->allgather(blocks, block_in); });
  std::vector<torch::Tensor> parts;
  for (int r = 0; r < w; ++r)
    parts.push_back(blocks[0][r].narrow(0, 0, counts[0][r].item<std::int64_t>()));
  return torch::cat(parts);
}

std::string Communicator::broadcast_bytes(const std::string& bytes, int root,
                                          const std::string& what) {
  torch::Tensor size = torch::tensor({static_cast<std::int64_t>(bytes.size())}, torch::kInt64);
  broadcast(size, root, what + " (size)");
  const auto n = size.item<std::int64_t>();
  torch::Tensor data = torch::empty({n}, torch::kUInt8);
  if (rank() == root && n > 0) std::memcpy(data.data_ptr(), bytes.data(), bytes.size());
  if (n > 0) broadcast(data, root, what);
  return std::string(reinterpret_cast<const char*>(data.data_ptr()), static_cast<std::size_t>(n));
}

void Communicator::barrier(const std::string& what) {
  run(what, options_, [&] { return group_->gloo->barrier(c10d::BarrierOptions{}); });
}

}  // namespace ppreid::dist

namespace ppreid::dist {

void Communicator::post(const std::string& key, const std::string& value) {
  try {
    group_->store->set(key, std::vector<std::uint8_t>(value.begin(), value.end()));
  } catch (const std::exception& e) {
    throw CollectiveError(collective_failure("posting '" + key + "' to the rendezvous store",
                                             options_, e.what()));
  }
}

std::optional<std::string> Communicator::poll(const std::string& key) {
  try {
    if (!group_->store->check({key})) return std::nullopt;
    const std::vector<std::uint8_t> value = group_->store->get(key);
    return std::string(value.begin(), value.end());
  } catch (const std::exception& e) {
    throw CollectiveError(collective_failure("reading '" + key + "' from the rendezvous store",
                                             options_, e.what()));
  }
}

}  // namespace ppreid::dist
