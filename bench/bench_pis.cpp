// PIS identity-shift throughput on CPU, per profile (configs/pis/<profile>.yaml).
//   BM_Shift/<profile>/batch:<B>  PisDeidentifier::apply_batch on B crops of one dataset: image
//                                 and stickman to tensors, posterior of the targets, structure
//                                 encoder, mixing with the cached partner latents, decoder, back
//                                 to BGR at the crop size. B = 1 is what a one-image-at-a-time
//                                 caller gets; B = 32 the batched path.
//   BM_TrainStep/<profile>        one stage-2 training step (all PIS losses, Adam) on a batch of
//                                 train.batch_size crops.
// The weights are random (throughput does not depend on them); the crops come from a synthetic
// dataset at the profile's image size. LibTorch threads: 1 (per-core figure) unless
// PPREID_BENCH_THREADS says otherwise. Counters: images/s and the network's parameters.
// Run:  build/bench/bench_pis [--benchmark_filter=Shift]
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <cstdlib>
#include <map>
#include <memory>

#include "core/data/stickman.h"
#include "core/data/synth/generator.h"
#include "core/deid/pis/feature_network.h"
#include "core/deid/pis/pis_deidentifier.h"
#include "core/deid/pis/pis_trainer.h"
#include "core/profile/profile.h"
#include "core/util/image.h"
#include "core/tensor/torch_threads.h"

namespace {

namespace fs = std::filesystem;
using namespace ppreid;
using namespace ppreid::deid::pis;

struct Fixture {
  fs::path dir;
  PisConfig config;
  data::Dataset dataset;
  std::unique_ptr<PisDeidentifier> pis;
  std::vector<cv::Mat> images;
  std::vector<deid::ImageContext> contexts;
};

// One fixture per profile, built on first use: dataset, random-weight checkpoint, prepared shift.
Fixture& fixture(const std::string& profile) {
  static std::map<std::string, std::unique_ptr<Fixture>> cache;
  auto& f = cache[profile];
  if (f) return *f;
  f = std::make_unique<Fixture>();
  f->dir = fs::temp_directory_path() / ("ppreid-bench-pis-" + profile);
  fs::remove_all(f->dir);
  f->config = load_pis_config(fs::path(PPREID_SOURCE_DIR) / "configs" / "pis" / (profile + ".yaml"));
  data::synth::SynthOptions so;
  so.ids = 16;
  so.cameras = 4;
  so.images_per_id = 8;
  so.height = f->config.profile.transform.height;
  so.width = f->config.profile.transform.width;
  so.seed = 1;
  data::synth::generate(so, f->dir / "data");
  f->dataset = data::load_dataset(f->dir / "data");
  torch::manual_seed(0);
  PisModelInfo info;
  info.network = f->config.network;
  info.geometry = {so.height, so.width, f->config.input_width()};
  info.feature_network = "none";
  PisNet net(info.network, 0, info.geometry.height, info.geometry.input_width);
  save_pis_checkpoint(f->dir / "model", net, info);
  PisShiftOptions o;
  o.model = f->dir / "model";
  o.seed = 1;
  f->pis = std::make_unique<PisDeidentifier>(o);
  f->pis->prepare(f->dataset);
  for (const auto& r : f->dataset.train) {
    const data::Pose* pose = f->dataset.pose(r);
    if (!pose || !data::usable_for_pose_conditioning(*pose)) continue;
    f->images.push_back(util::decode_image(f->dataset.absolute(r)));
    f->contexts.push_back({&r, pose, f->contexts.size()});
  }
  return *f;
}

// All parameter elements (a loaded model has its gradients switched off).
double parameters_of(const PisDeidentifier& pis) {
  std::int64_t n = 0;
  for (const auto& p : pis.model().net->parameters()) n += p.numel();
  return static_cast<double>(n);
}

int threads() {
  const char* t = std::getenv("PPREID_BENCH_THREADS");
  return t ? std::atoi(t) : 1;
}

void BM_Shift(benchmark::State& state, const std::string& profile) {
  tensor::configure_torch_threads(threads());
  Fixture& f = fixture(profile);
  const size_t batch = static_cast<size_t>(state.range(0));
  std::vector<cv::Mat> images(f.images.begin(), f.images.begin() + batch);
  std::vector<deid::ImageContext> contexts(f.contexts.begin(), f.contexts.begin() + batch);
  for (auto _ : state) benchmark::DoNotOptimize(f.pis->apply_batch(images, contexts));
  state.counters["images/s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * batch), benchmark::Counter::kIsRate);
  state.counters["params"] = parameters_of(*f.pis);
  state.SetLabel(std::to_string(f.config.input_height()) + "x" +
                 std::to_string(f.config.input_width()) + ", " + std::to_string(threads()) +
                 " thread(s)");
}

void BM_TrainStep(benchmark::State& state, const std::string& profile) {
  tensor::configure_torch_threads(threads());
  Fixture& f = fixture(profile);
  PisConfig c = f.config;
  c.features.network = "random";  // vgg19/reid need weight files; random has the same role
  Geometry g{c.profile.transform.height, c.profile.transform.width, c.input_width()};
  PisTrainingSet set(f.dataset, g);
  PisNet net(c.network, set.num_ids(), g.height, g.input_width);
  torch::optim::Adam adam(net->parameters(), torch::optim::AdamOptions(c.train.lr));
  auto features = make_feature_network(c.features);
  util::Rng rng(1);
  for (auto _ : state) {
    auto batch = set.sample(c.train.batch_size, rng, 0.5);
    PisLossParts parts = pis_losses(net, features.get(), c, batch, 2, 1.0);
    adam.zero_grad();
    parts.total.backward();
    adam.step();
  }
  state.counters["images/s"] = benchmark::Counter(
      static_cast<double>(state.iterations() * c.train.batch_size), benchmark::Counter::kIsRate);
  state.counters["params"] = static_cast<double>(count_parameters(*net));
}

BENCHMARK_CAPTURE(BM_Shift, tiny, std::string("tiny"))->Arg(1)->Arg(32)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Shift, small, std::string("small"))->Arg(1)->Arg(32)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Shift, paper, std::string("paper"))->Arg(1)->Arg(32)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_TrainStep, tiny, std::string("tiny"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_TrainStep, small, std::string("small"))->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
