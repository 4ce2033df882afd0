// ReID model throughput on CPU, torch::set_num_threads(2) (the target machine's 2 cores):
//   BM_TrainStep/<arch>_<HxW>  one BoT + centroid training step on a P=4, K=4 batch (16 images):
//                              forward, ID (label smoothing 0.1) + batch-hard triplet + center +
//                              centroid triplet losses, backward, Adam step (lr 3.5e-4, weight
//                              decay 5e-4) and the centres' SGD step (lr 0.5, grad / 0.0005), as
//                              the trainer does; 751 classes (Market-1501's training identities).
//   BM_Inference/<arch>_<HxW>  embed() of a batch of 64 images in eval mode under NoGradGuard.
// Counters: images/s; params (trainable parameters of backbone + neck + classifier); GMAC/s
// (convolution multiply-adds per second of the forward pass alone, from reid::describe).
// Before the runs the backbone table (parameters, multiply-adds at 64x32 and 128x64) is printed
// to stderr. Run:  build/bench/bench_reid_model [--benchmark_filter=Inference]
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <cstdio>
#include <string>

#include "core/reid/backbone.h"
#include "core/reid/losses.h"
#include "core/reid/model.h"

namespace {

using namespace ppreid::reid;

constexpr int kP = 4, kK = 4, kClasses = 751, kInferenceBatch = 64;

ModelOptions options_for(const std::string& arch, int num_classes) {
  ModelOptions o;
  o.backbone.arch = arch;
  o.num_classes = num_classes;
  return o;
}

int64_t trainable_parameters(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) {
    if (p.requires_grad()) n += p.numel();
  }
  return n;
}

void BM_TrainStep(benchmark::State& state, const std::string& arch, int h, int w) {
  torch::manual_seed(0);
  ReidModel model(options_for(arch, kClasses));
  model->train();
  CenterLoss center(kClasses, model->feature_dim());
  torch::optim::Adam adam(model->parameters(),
                          torch::optim::AdamOptions(3.5e-4).weight_decay(5e-4));
  torch::optim::SGD center_sgd(center->parameters(), torch::optim::SGDOptions(0.5));
  const LossWeights weights;

  torch::Tensor images = torch::randn({kP * kK, 3, h, w});
  torch::Tensor ids = torch::randperm(kClasses, torch::kLong).slice(0, 0, kP);
  torch::Tensor labels = ids.repeat_interleave(kK);

  for (auto _ : state) {
    adam.zero_grad();
    center_sgd.zero_grad();
    ReidOutput out = model->forward(images);
    LossParts parts = combined_loss(out, labels, weights, &center, 0.1, 0.3);
    parts.total.backward();
    for (auto& p : center->parameters()) p.mutable_grad().mul_(1.0 / weights.center);
    adam.step();
    center_sgd.step();
    benchmark::DoNotOptimize(parts.total.data_ptr());
  }
  const double images_per_iter = kP * kK;
  state.counters["images/s"] =
      benchmark::Counter(images_per_iter * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["params"] = static_cast<double>(trainable_parameters(*model));
}

void BM_Inference(benchmark::State& state, const std::string& arch, int h, int w) {
  torch::manual_seed(0);
  ReidModel model(options_for(arch, 0));
  model->eval();
  torch::NoGradGuard no_grad;
  torch::Tensor images = torch::randn({kInferenceBatch, 3, h, w});
  for (auto _ : state) {
    torch::Tensor feat = model->embed(images);
    benchmark::DoNotOptimize(feat.data_ptr());
  }
  const double done = static_cast<double>(kInferenceBatch) * state.iterations();
  const double macs = static_cast<double>(describe(model->backbone()->options(), h, w).macs);
  state.counters["images/s"] = benchmark::Counter(done, benchmark::Counter::kIsRate);
  state.counters["GMAC/s"] = benchmark::Counter(done * macs / 1e9, benchmark::Counter::kIsRate);
  state.counters["params"] = static_cast<double>(trainable_parameters(*model));
}

BENCHMARK_CAPTURE(BM_TrainStep, resnet_tiny_64x32, std::string("resnet_tiny"), 64, 32)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_TrainStep, resnet_small_128x64, std::string("resnet_small"), 128, 64)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_TrainStep, resnet18_128x64, std::string("resnet18"), 128, 64)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

BENCHMARK_CAPTURE(BM_Inference, resnet_tiny_64x32, std::string("resnet_tiny"), 64, 32)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Inference, resnet_small_128x64, std::string("resnet_small"), 128, 64)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Inference, resnet18_128x64, std::string("resnet18"), 128, 64)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Inference, resnet50_128x64, std::string("resnet50"), 128, 64)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void print_backbone_table() {
  std::fprintf(stderr, "%-13s %5s %12s %15s %15s\n", "arch", "dim", "params", "MACs 64x32",
               "MACs 128x64");
  for (const auto& arch : backbone_archs()) {
    BackboneOptions o;
    o.arch = arch;
    const BackboneInfo small = describe(o, 64, 32);
    const BackboneInfo large = describe(o, 128, 64);
    std::fprintf(stderr, "%-13s %5d %12lld %15lld %15lld\n", arch.c_str(), small.feature_dim,
                 static_cast<long long>(small.parameters), static_cast<long long>(small.macs),
                 static_cast<long long>(large.macs));
  }
  std::fprintf(stderr, "(last stride 1, ReLU; multiply-adds of convolutions per image)\n\n");
}

}  // namespace

int main(int argc, char** argv) {
  torch::set_num_threads(2);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  print_backbone_table();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
