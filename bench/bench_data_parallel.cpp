// Data-parallel gradient averaging over c10d's Gloo, at ResNet-50 size: the trainable parameters
// of ppreid's ResNet-50 ReID model (backbone, BNNeck and a 751-identity classifier, Market-1501's
// train split), averaged between 2 ranks (threads of this process, each with its own Gloo group
// over loopback TCP, so the bytes really cross sockets).
//   AllReduce/bucket_kb:0      one collective per tensor (the straightforward way)
//   AllReduce/bucket_kb:N      GradientSync's buckets of N KiB (25600 = 25 MB, PyTorch DDP's)
// MB_per_s counts 10^6 bytes of gradient averaged per second (per rank).
//   build/bench/bench_data_parallel
#include <benchmark/benchmark.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "core/distributed/communicator.h"
#include "core/distributed/gradient_sync.h"
#include "core/reid/model.h"
#include "core/reid/train_step.h"
#include "core/tensor/torch_threads.h"

namespace {

using namespace ppreid;

// Gradient-shaped tensors of the ResNet-50 ReID model, filled with a fixed pattern.
std::vector<torch::Tensor> resnet50_gradients() {
  reid::BackboneOptions backbone;
  backbone.arch = "resnet50";
  reid::ReidModel model(reid::ModelOptions{backbone, 751, true});
  std::vector<torch::Tensor> params;
  for (auto& p : reid::trainable_parameters(model)) {
    torch::Tensor leaf = torch::zeros_like(p).requires_grad_();
    leaf.mutable_grad() = torch::full_like(p, 0.5);
    params.push_back(leaf);
  }
  return params;
}

// A loopback port the kernel just handed out (bound, then released for rank 0's store).
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

dist::LaunchOptions launch(int rank, int port) {
  dist::LaunchOptions o;
  o.world_size = 2;
  o.rank = rank;
  o.host = "127.0.0.1";
  o.port = static_cast<std::uint16_t>(port);
  o.backend = dist::Backend::kGloo;
  return o;
}

void AllReduce(benchmark::State& state) {
  tensor::configure_torch_threads(1);
  const double bucket_mb = static_cast<double>(state.range(0)) / 1024.0;
  const int port = free_port();
  const auto iterations = static_cast<std::int64_t>(state.max_iterations);
  std::thread peer([&] {
    dist::Communicator comm(launch(1, port));
    std::vector<torch::Tensor> params = resnet50_gradients();
    dist::GradientSync sync(comm, params, {bucket_mb, /*overlap=*/false});
    for (std::int64_t i = 0; i < iterations; ++i) {
      sync.begin_step();
      sync.finish_step();
    }
  });
  dist::Communicator comm(launch(0, port));
  std::vector<torch::Tensor> params = resnet50_gradients();
  dist::GradientSync sync(comm, params, {bucket_mb, /*overlap=*/false});
  for (auto _ : state) {
    sync.begin_step();
    sync.finish_step();
  }
  peer.join();
  const double bytes = static_cast<double>(sync.num_elements()) * sizeof(float);
  state.counters["MB_per_s"] = benchmark::Counter(bytes / 1e6, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["params_per_s"] = benchmark::Counter(static_cast<double>(sync.num_elements()),
                                                      benchmark::Counter::kIsIterationInvariantRate);
  state.counters["tensors"] = static_cast<double>(params.size());
  state.counters["collectives"] = sync.num_buckets();
}
BENCHMARK(AllReduce)
    ->ArgName("bucket_kb")
    ->Arg(0)
    ->Arg(1024)
    ->Arg(25 * 1024)
    ->Iterations(8)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
