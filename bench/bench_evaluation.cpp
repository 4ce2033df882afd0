// Market-1501 evaluation at Market-1501 size (3368 queries x 15913 gallery images, 750 query
// identities, 2798 distractors, 6 cameras) on a random distance matrix, against a
// straightforward version (a vector of (distance, index) pairs fully std::sort-ed per query, then
// torchreid's loop); and pairwise squared-Euclidean distances of 2048-d features (float64
// product) against a per-pair loop. Thread counts are set explicitly per row.
//   build/bench/bench_evaluation --benchmark_min_time=1
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include "core/reid/distance.h"
#include "core/reid/evaluation.h"

namespace {

using namespace ppreid;

constexpr int kQueries = 3368, kGallery = 15913, kIds = 750, kDistractors = 2798, kCams = 6;

struct MarketCase {
  torch::Tensor distmat;  // float32 [Q, G], uniform random
  std::vector<int> q_pids, g_pids, q_camids, g_camids;
};

const MarketCase& market_case() {
  static const MarketCase c = [] {
    MarketCase m;
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> id(1, kIds), cam(0, kCams - 1);
    for (int i = 0; i < kQueries; ++i) {
      m.q_pids.push_back(id(rng));
      m.q_camids.push_back(cam(rng));
    }
    for (int j = 0; j < kGallery; ++j) {
      m.g_pids.push_back(j < kDistractors ? 0 : id(rng));
      m.g_camids.push_back(cam(rng));
    }
    torch::manual_seed(7);
    m.distmat = torch::rand({kQueries, kGallery}, torch::kFloat32);
    return m;
  }();
  return c;
}

// torchreid's eval_market1501 loop, written the obvious way.
double straightforward_map(const MarketCase& c) {
  const float* d = c.distmat.data_ptr<float>();
  std::vector<std::pair<double, int>> order(kGallery);
  double ap_sum = 0;
  int valid = 0;
  for (int q = 0; q < kQueries; ++q) {
    for (int g = 0; g < kGallery; ++g) order[g] = {d[static_cast<int64_t>(q) * kGallery + g], g};
    std::sort(order.begin(), order.end());
    int position = 0, hits = 0;
    double precision_sum = 0;
    for (const auto& [distance, g] : order) {
      const bool same_pid = c.g_pids[g] == c.q_pids[q];
      if (same_pid && c.g_camids[g] == c.q_camids[q]) continue;
      ++position;
      if (same_pid) precision_sum += static_cast<double>(++hits) / position;
    }
    if (hits == 0) continue;
    ++valid;
    ap_sum += precision_sum / hits;
  }
  return ap_sum / valid;
}

void BM_EvaluateMarket(benchmark::State& state) {
  torch::set_num_threads(static_cast<int>(state.range(0)));
  const bool float64 = state.range(1) == 1;
  const MarketCase& c = market_case();
  torch::Tensor d = float64 ? c.distmat.to(torch::kFloat64) : c.distmat;
  for (auto _ : state) {
    reid::RetrievalMetrics m = reid::evaluate_market(d, c.q_pids, c.g_pids, c.q_camids, c.g_camids);
    benchmark::DoNotOptimize(m.map);
  }
  state.counters["queries/s"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * kQueries, benchmark::Counter::kIsRate);
  state.SetLabel(std::string(float64 ? "float64" : "float32") + ", " +
                 std::to_string(state.range(0)) + " thread(s)");
}

void BM_StraightforwardMarket(benchmark::State& state) {
  const MarketCase& c = market_case();
  double map = 0;
  for (auto _ : state) benchmark::DoNotOptimize(map = straightforward_map(c));
  const double fast =
      reid::evaluate_market(c.distmat, c.q_pids, c.g_pids, c.q_camids, c.g_camids).map;
  if (std::abs(map - fast) > 1e-12) state.SkipWithError("the two versions disagree on mAP");
  state.counters["queries/s"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * kQueries, benchmark::Counter::kIsRate);
  state.SetLabel("float32, full std::sort per query, 1 thread");
}

constexpr int kDim = 2048, kDistQueries = 256, kDistGallery = 2048;

void feature_counters(benchmark::State& state) {
  const double bytes = (kDistQueries + kDistGallery) * static_cast<double>(kDim) * 4;
  state.counters["MB/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * bytes / 1e6,
                                              benchmark::Counter::kIsRate);
  state.counters["pairs/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * kDistQueries * kDistGallery,
                         benchmark::Counter::kIsRate);
}

void BM_PairwiseDistance(benchmark::State& state) {
  torch::set_num_threads(static_cast<int>(state.range(0)));
  const auto metric = state.range(1) == 0 ? reid::Metric::kEuclidean : reid::Metric::kCosine;
  torch::manual_seed(3);
  torch::Tensor q = torch::randn({kDistQueries, kDim}), g = torch::randn({kDistGallery, kDim});
  for (auto _ : state) benchmark::DoNotOptimize(reid::pairwise_distance(q, g, metric).data_ptr());
  feature_counters(state);
  state.SetLabel(reid::to_string(metric) + ", 256x2048 by 2048-d float32 in, float64 out, " +
                 std::to_string(state.range(0)) + " thread(s)");
}

void BM_StraightforwardDistance(benchmark::State& state) {
  torch::manual_seed(3);
  torch::Tensor q = torch::randn({kDistQueries, kDim}), g = torch::randn({kDistGallery, kDim});
  const float* qp = q.data_ptr<float>();
  const float* gp = g.data_ptr<float>();
  std::vector<double> out(static_cast<size_t>(kDistQueries) * kDistGallery);
  for (auto _ : state) {
    for (int i = 0; i < kDistQueries; ++i)
      for (int j = 0; j < kDistGallery; ++j) {
        double sum = 0;
        for (int k = 0; k < kDim; ++k) {
          const double diff = static_cast<double>(qp[i * kDim + k]) - gp[j * kDim + k];
          sum += diff * diff;
        }
        out[static_cast<size_t>(i) * kDistGallery + j] = sum;
      }
    benchmark::DoNotOptimize(out.data());
  }
  feature_counters(state);
  state.SetLabel("euclidean, per-pair loop in double, 1 thread");
}

BENCHMARK(BM_EvaluateMarket)
    ->Args({1, 0})
    ->Args({2, 0})
    ->Args({1, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_StraightforwardMarket)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_PairwiseDistance)
    ->Args({1, 0})
    ->Args({2, 0})
    ->Args({1, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_StraightforwardDistance)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
