// Aggregation throughput on the shared part of a ResNet-50 ReID model (backbone + BNNeck from
// reid::ReidModel, 23.5 M float32 parameters plus BatchNorm buffers), N = 2..32 sites:
//   FedAvgStreaming   agg::FedAvg: each update folded into a float64 running sum on arrival
//                     (updates come from a pool of 2, as decoded messages that are freed after)
//   FedAvgNaive       straightforward: keep all N updates, then per element sum_k n_k x_k / n
//   Median            agg::CoordinateWise (SIMD sorting network per 16 coordinates, N copies)
//   MedianTorch       straightforward: torch::stack the N updates per tensor, torch::median(0)
//   Validate          agg::UpdateValidator::admit of one update (structure, NaN/Inf, norm)
// params_per_s counts every site's parameters (N x P per round). Memory counters: held_MB what
// the strategy holds at its peak; rss_peak_MB the process's peak RSS during the row (VmHWM,
// reset per row through /proc/self/clear_refs), rss_growth_MB that peak minus the RSS before
// the row's aggregation (inputs already made). Threads are the second argument.
//   build/bench/bench_aggregation
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <ATen/Parallel.h>

#include <fstream>
#include <string>
#include <vector>

#include "aggregator/coordinate_wise.h"
#include "aggregator/fedavg.h"
#include "aggregator/update_validator.h"
#include "core/reid/model.h"

namespace {

using namespace ppreid;
using agg::ModelUpdate;
using agg::NamedTensors;

const NamedTensors& global_model() {
  static const NamedTensors global = [] {
    reid::ModelOptions o;
    o.backbone.arch = "resnet50";
    return reid::ReidModel(o)->shared_state();
  }();
  return global;
}

std::int64_t parameter_count(const NamedTensors& t) {
  std::int64_t n = 0;
  for (const auto& [name, x] : t)
    if (x.is_floating_point()) n += x.numel();
  return n;
}

// Site k's update: the global weights plus seeded noise, scaled per site so all N differ.
ModelUpdate make_update(int k) {
  static std::vector<NamedTensors> noise;
  if (noise.empty()) {
    torch::manual_seed(11);
    for (int p = 0; p < 4; ++p) {
      NamedTensors n;
      for (const auto& [name, x] : global_model())
        n.emplace_back(name, x.is_floating_point() ? torch::randn_like(x) * 0.01 : x);
      noise.push_back(std::move(n));
    }
  }
  ModelUpdate u;
  u.site = "site-" + std::to_string(k);
  u.samples = 500 + 37 * k;
  const auto& base = global_model();
  for (std::size_t i = 0; i < base.size(); ++i) {
    const auto& [name, x] = base[i];
    u.tensors.emplace_back(name, x.is_floating_point()
                                     ? x + noise[k % 4][i].second * (1.0 + 0.01 * k)
                                     : x + k);
  }
  return u;
}

long proc_status_kb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) return std::stol(line.substr(std::string(key).size()));
  return -1;
}

void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

struct MemoryProbe {
  MemoryProbe() {
    reset_peak_rss();
    start_kb = proc_status_kb("VmRSS:");
  }
  void report(benchmark::State& state, std::size_t held_bytes) const {
    long peak = proc_status_kb("VmHWM:");
    state.counters["rss_peak_MB"] = peak / 1024.0;
    state.counters["rss_growth_MB"] = (peak - start_kb) / 1024.0;
    state.counters["held_MB"] = held_bytes / 1048576.0;
  }
  long start_kb;
};

void finish_row(benchmark::State& state, int n) {
  const auto p = parameter_count(global_model());
  state.counters["params_per_s"] =
      benchmark::Counter(static_cast<double>(n) * p * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["model_params"] = static_cast<double>(p);
  state.SetLabel(std::to_string(at::get_num_threads()) + " thread(s)");
}

void FedAvgStreaming(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  at::set_num_threads(static_cast<int>(state.range(1)));
  std::vector<ModelUpdate> pool = {make_update(0), make_update(1)};
  agg::FedAvg fedavg({});
  std::size_t held = 0;
  MemoryProbe probe;
  for (auto _ : state) {
    fedavg.begin_round(global_model());
    for (int k = 0; k < n; ++k) {
      fedavg.add(pool[k % 2]);
      held = std::max(held, fedavg.held_bytes());
    }
    NamedTensors result = fedavg.finish();
    benchmark::DoNotOptimize(result.data());
  }
  probe.report(state, held);
  finish_row(state, n);
}

void FedAvgNaive(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  at::set_num_threads(1);
  std::vector<ModelUpdate> kept;
  for (int k = 0; k < n; ++k) kept.push_back(make_update(k));
  MemoryProbe probe;
  for (auto _ : state) {
    double total = 0;
    for (const auto& u : kept) total += static_cast<double>(u.samples);
    NamedTensors result;
    for (std::size_t i = 0; i < global_model().size(); ++i) {
      const auto& [name, like] = global_model()[i];
      if (!like.is_floating_point()) {
        result.emplace_back(name, like.clone());
        continue;
      }
      torch::Tensor out = torch::empty_like(like);
      float* o = out.data_ptr<float>();
      std::vector<const float*> in;
      std::vector<double> weight;
      for (const auto& u : kept) {
        in.push_back(u.tensors[i].second.data_ptr<float>());
        weight.push_back(static_cast<double>(u.samples));
      }
      for (std::int64_t j = 0; j < like.numel(); ++j) {
        double sum = 0;
        for (std::size_t k = 0; k < in.size(); ++k) sum += weight[k] * in[k][j];
        o[j] = static_cast<float>(sum / total);
      }
      result.emplace_back(name, out);
    }
    benchmark::DoNotOptimize(result.data());
  }
  probe.report(state, agg::byte_size(global_model()) * n);
  finish_row(state, n);
}

void Median(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  at::set_num_threads(static_cast<int>(state.range(1)));
  std::vector<ModelUpdate> updates;
  for (int k = 0; k < n; ++k) updates.push_back(make_update(k));
  agg::StrategyConfig c;
  c.kind = agg::StrategyKind::kMedian;
  agg::CoordinateWise median(c);
  std::size_t held = 0;
  MemoryProbe probe;
  for (auto _ : state) {
    median.begin_round(global_model());
    for (const auto& u : updates) median.add(u);
    held = std::max(held, median.held_bytes());
    NamedTensors result = median.finish();
    benchmark::DoNotOptimize(result.data());
  }
  probe.report(state, held);
  finish_row(state, n);
}

void MedianTorch(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  at::set_num_threads(static_cast<int>(state.range(1)));
  std::vector<ModelUpdate> updates;
  for (int k = 0; k < n; ++k) updates.push_back(make_update(k));
  MemoryProbe probe;
  for (auto _ : state) {
    NamedTensors result;
    for (std::size_t i = 0; i < global_model().size(); ++i) {
      std::vector<torch::Tensor> column;
      for (const auto& u : updates) column.push_back(u.tensors[i].second);
      torch::Tensor stacked = torch::stack(column);
      result.emplace_back(global_model()[i].first,
                          stacked.is_floating_point() ? std::get<0>(stacked.median(0))
                                                      : std::get<0>(stacked.max(0)));
    }
    benchmark::DoNotOptimize(result.data());
  }
  probe.report(state, agg::byte_size(global_model()) * n);
  finish_row(state, n);
}

void Validate(benchmark::State& state) {
  at::set_num_threads(static_cast<int>(state.range(0)));
  agg::UpdateValidator validator(agg::ValidationLimits{1e9, 100'000'000});
  const ModelUpdate update = make_update(1);
  std::int64_t round = 0;
  for (auto _ : state) {
    validator.begin_round(round, global_model());
    ModelUpdate u = update;
    u.round = round++;
    if (validator.admit(u)) state.SkipWithError("valid update rejected");
  }
  finish_row(state, 1);
}

void sites_and_threads(benchmark::internal::Benchmark* b) {
  for (int threads : {1, 2})
    for (int n : {2, 4, 8, 16, 32}) b->Args({n, threads});
}

BENCHMARK(FedAvgStreaming)->Apply(sites_and_threads)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(FedAvgNaive)->ArgsProduct({{2, 4, 8, 16, 32}, {1}})->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(Median)->Apply(sites_and_threads)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(MedianTorch)->ArgsProduct({{2, 4, 8, 16, 32}, {2}})->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(Validate)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const auto& global = global_model();
  std::fprintf(stderr, "ResNet-50 shared part: %zu tensors, %lld float parameters, %.1f MB\n\n",
               global.size(), static_cast<long long>(parameter_count(global)),
               agg::byte_size(global) / 1048576.0);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
