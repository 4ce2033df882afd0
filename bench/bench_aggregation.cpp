// Aggregation throughput on the shared part of a ResNet-50 ReID model (backbone + BNNeck from
// reid::ReidModel, 23.5 M float32 parameters plus BatchNorm buffers), N = 2..32 sites:
//   FedAvgStreaming   agg::FedAvg: updates folded (in pairs) into a float64 running sum as they
//                     arrive; they come from a pool of 2, like decoded messages freed after use
//   FedAvgNaive       straightforward: keep all N updates, then per element sum_k n_k x_k / n
//   Median            agg::CoordinateWise (SIMD sorting network per 16 coordinates, N copies)
//   MedianTorch       straightforward: torch::stack the N updates per tensor, torch::median(0)
//   Validate          agg::UpdateValidator::admit of one update (structure, NaN/Inf, norm)
//   Krum, MultiKrum, Bulyan   agg::Krum (f = 1; multi-krum keeps n - f): all pairwise distances
//                     in one blocked Gram pass (float64 matrix products), then the selection
//   KrumPairs         straightforward Krum: the distance of every pair by its own pass over the
//                     two updates (agg::kernels::squared_distance per tensor, the same threaded
//                     float32 -> float64 loop the validator uses), then the same selection
//   DistancesGram / DistancesPairs   the distance matrix alone, both ways
// params_per_s counts every site's parameters (N x P per round). Memory counters: held_MB what
// the strategy holds at its peak; peak_MB the process's peak RSS during the row (VmHWM, reset
// per row through /proc/self/clear_refs) minus its RSS when the row starts, i.e. the row's
// inputs plus the aggregation's allocations. Threads are the second argument. For clean peak
// figures run one row per process:
//   for r in FedAvgStreaming/32/1 Median/32/2; do build/bench/bench_aggregation --benchmark_filter=$r/; done
//   build/bench/bench_aggregation
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <ATen/Parallel.h>

#include <malloc.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "aggregator/krum.h"
#include "aggregator/pairwise_distances.h"
#include "aggregator/strategy.h"
#include "aggregator/tensor_kernels.h"
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

// `count` updates: site k's is the global weights plus seeded Gaussian noise (std 0.01).
std::vector<ModelUpdate> make_updates(int count) {
  const auto& base = global_model();
  std::vector<ModelUpdate> updates(count);
  for (int k = 0; k < count; ++k) {
    torch::manual_seed(1000 + k);
    ModelUpdate& u = updates[k];
    u.site = "site-" + std::to_string(k);
    u.samples = 500 + 37 * k;
    for (const auto& [name, x] : base)
      u.tensors.emplace_back(name, x.is_floating_point() ? x + 0.01 * torch::randn_like(x) : x + k);
  }
  return updates;
}

long proc_status_kb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) return std::stol(line.substr(std::string(key).size()));
  return -1;
}

void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

// Peak memory of a row beyond the process's baseline (LibTorch, the global model): the inputs
// the row needs (all N updates for the naive FedAvg and the medians, a pool of 2 in-flight
// updates for streaming FedAvg) plus what the aggregation allocates.
struct MemoryProbe {
  MemoryProbe() {
    malloc_trim(0);  // give memory freed by earlier work back, so the baseline is what is in use
    reset_peak_rss();
    base_kb = proc_status_kb("VmRSS:");
  }
  void report(benchmark::State& state, std::size_t held_bytes) const {
    state.counters["peak_MB"] = (proc_status_kb("VmHWM:") - base_kb) / 1024.0;
    state.counters["held_MB"] = held_bytes / 1048576.0;
  }
  long base_kb;
};

void finish_row(benchmark::State& state, int n) {
  const auto p = parameter_count(global_model());
  state.counters["params_per_s"] =
      benchmark::Counter(static_cast<double>(n) * p * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["model_params"] = static_cast<double>(p);
  state.SetLabel(std::to_string(at::get_num_threads()) + " thread(s)");
}

void FedAvgNaive(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  at::set_num_threads(1);
  MemoryProbe probe;
  const std::vector<ModelUpdate> kept = make_updates(n);
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

// One round per iteration through the project's strategy: `n` updates taken in turn from
// `inputs` (a pool of 2 for streaming FedAvg, as decoded messages that are freed after use; all
// n for the median, which has to hold them).
void run_strategy(benchmark::State& state, agg::StrategyKind kind, int pool) {
  const int n = static_cast<int>(state.range(0));
  at::set_num_threads(static_cast<int>(state.range(1)));
  MemoryProbe probe;
  const std::vector<ModelUpdate> inputs = make_updates(std::min(n, pool));
  agg::StrategyConfig c;
  c.kind = kind;
  auto strategy = agg::make_strategy(c);
  std::size_t held = 0;
  for (auto _ : state) {
    strategy->begin_round(global_model());
    for (int k = 0; k < n; ++k) {
      strategy->add(inputs[k % inputs.size()]);
      held = std::max(held, strategy->held_bytes());
    }
    NamedTensors result = strategy->finish();
    benchmark::DoNotOptimize(result.data());
  }
  probe.report(state, held);
  finish_row(state, n);
}

void FedAvgStreaming(benchmark::State& state) { run_strategy(state, agg::StrategyKind::kFedAvg, 2); }
void Median(benchmark::State& state) { run_strategy(state, agg::StrategyKind::kMedian, 32); }

void MedianTorch(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  at::set_num_threads(static_cast<int>(state.range(1)));
  MemoryProbe probe;
  const std::vector<ModelUpdate> updates = make_updates(n);
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
  agg::ValidationLimits limits;
  limits.norm_bound = agg::NormBound::kAbsolute;
  limits.max_delta_norm = 1e9;
  agg::UpdateValidator validator(limits);
  const ModelUpdate update = make_updates(1)[0];
  std::int64_t round = 0;
  for (auto _ : state) {
    validator.begin_round(round, global_model());
    ModelUpdate u = update;
    u.round = round++;
    if (validator.admit(u)) state.SkipWithError("valid update rejected");
  }
  finish_row(state, 1);
}

// The distance matrix the way Flower's _compute_distances does it: pair by pair.
torch::Tensor distances_by_pairs(const std::vector<ModelUpdate>& updates) {
  const auto n = static_cast<std::int64_t>(updates.size());
  torch::Tensor d = torch::zeros({n, n}, torch::kFloat64);
  for (std::int64_t u = 0; u < n; ++u)
    for (std::int64_t v = u + 1; v < n; ++v) {
      double sum = 0;
      for (std::size_t i = 0; i < updates[u].tensors.size(); ++i)
        if (updates[u].tensors[i].second.is_floating_point())
          sum += agg::kernels::squared_distance(updates[u].tensors[i].second,
                                                updates[v].tensors[i].second);
      d[u][v] = sum;
      d[v][u] = sum;
    }
  return d;
}

torch::Tensor distances_by_gram(const std::vector<ModelUpdate>& updates) {
  std::vector<std::vector<agg::FlatPart>> parts(updates.size());
  std::vector<std::int64_t> numels;
  for (const auto& [name, t] : global_model())
    if (t.is_floating_point()) numels.push_back(t.numel());
  for (std::size_t u = 0; u < updates.size(); ++u)
    for (const auto& [name, t] : updates[u].tensors)
      if (t.is_floating_point()) parts[u].push_back({t.data_ptr<float>(), nullptr});
  return agg::pairwise_squared_distances(parts, numels);
}

void distance_row(benchmark::State& state, torch::Tensor (*fn)(const std::vector<ModelUpdate>&)) {
  const int n = static_cast<int>(state.range(0));
  at::set_num_threads(static_cast<int>(state.range(1)));
  const std::vector<ModelUpdate> updates = make_updates(n);
  MemoryProbe probe;
  for (auto _ : state) benchmark::DoNotOptimize(fn(updates).data_ptr());
  probe.report(state, static_cast<std::size_t>(n) * n * 8);
  finish_row(state, n);
}

void DistancesGram(benchmark::State& state) { distance_row(state, distances_by_gram); }
void DistancesPairs(benchmark::State& state) { distance_row(state, distances_by_pairs); }

void Krum(benchmark::State& state) { run_strategy(state, agg::StrategyKind::kKrum, 32); }
void MultiKrum(benchmark::State& state) { run_strategy(state, agg::StrategyKind::kMultiKrum, 32); }
void Bulyan(benchmark::State& state) { run_strategy(state, agg::StrategyKind::kBulyan, 32); }

// Krum the straightforward way: pairwise distances pair by pair, the same scores, a copy of the
// winner.
void KrumPairs(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  at::set_num_threads(static_cast<int>(state.range(1)));
  MemoryProbe probe;
  const std::vector<ModelUpdate> updates = make_updates(n);
  std::vector<std::size_t> all(updates.size());
  for (std::size_t k = 0; k < all.size(); ++k) all[k] = k;
  for (auto _ : state) {
    const torch::Tensor d = distances_by_pairs(updates);
    const auto scores = agg::detail::krum_scores(d, all, 1);
    const auto best = agg::detail::lowest(scores, 1).front();
    NamedTensors result;
    for (const auto& [name, t] : updates[best].tensors) result.emplace_back(name, t.clone());
    benchmark::DoNotOptimize(result.data());
  }
  probe.report(state, agg::byte_size(global_model()) * n);
  finish_row(state, n);
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
BENCHMARK(Krum)->ArgsProduct({{8, 32}, {2}})->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(MultiKrum)->ArgsProduct({{8, 32}, {2}})->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(Bulyan)->ArgsProduct({{8, 32}, {2}})->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(KrumPairs)->ArgsProduct({{8, 32}, {2}})->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(DistancesGram)->ArgsProduct({{8, 32}, {1, 2}})->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(DistancesPairs)->ArgsProduct({{8, 32}, {1, 2}})->UseRealTime()->Unit(benchmark::kMillisecond);

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
