// Throughput of the synthetic pedestrian generator, in images per second: drawing alone, drawing
// plus JPEG encoding, and whole datasets written to disk with 1 and 2 worker threads.
//   ./bench_synth --benchmark_counter_tabular=true
//   PPREID_BENCH_DIR=/dev/shm ./bench_synth --benchmark_filter=Generate
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/data/synth/generator.h"
#include "core/data/synth/renderer.h"
#include "core/data/synth/scene.h"
#include "core/data/synth/traits.h"

namespace {

using namespace ppreid::data::synth;
namespace fs = std::filesystem;

struct Workload {
  std::vector<IdentityTraits> people;
  std::vector<CameraStyle> cameras;
};

Workload make_workload(int height, int width) {
  ppreid::util::Rng rng(1);
  Workload w;
  for (int i = 0; i < 64; ++i) w.people.push_back(sample_traits(rng));
  for (int c = 0; c < 6; ++c) w.cameras.push_back(sample_camera_style(rng, height, width));
  return w;
}

void render_loop(benchmark::State& state, bool encode) {
  const int height = static_cast<int>(state.range(0));
  const int width = static_cast<int>(state.range(1));
  const Workload w = make_workload(height, width);
  ppreid::util::Rng rng(2);
  std::vector<uchar> jpeg;
  const std::vector<int> quality{cv::IMWRITE_JPEG_QUALITY, 95};
  std::size_t i = 0;
  for (auto _ : state) {
    const CameraStyle& style = w.cameras[i % w.cameras.size()];
    const ImageParams params = sample_image_params(style, rng, height, width);
    RenderedImage r =
        render_image(w.people[i % w.people.size()], style, params, height, width, rng);
    if (encode) {
      cv::imencode(".jpg", r.image, jpeg, quality);
      benchmark::DoNotOptimize(jpeg.data());
    }
    benchmark::DoNotOptimize(r.image.data);
    ++i;
  }
  state.counters["images/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_Render(benchmark::State& state) { render_loop(state, false); }
void BM_RenderEncodeJpeg(benchmark::State& state) { render_loop(state, true); }

// A 100-identity, 6-camera, 12-images-per-id dataset (1200 images + 50 distractors) at 128x64.
// Includes planning, camera backdrops, CSVs, the final sync and removing the previous run's
// output. Written under $PPREID_BENCH_DIR (default: the system temp dir): on small VM disks
// creating a file can cost ~1 ms, which then dominates; point it at /dev/shm to see the CPU cost.
fs::path bench_dir() {
  const char* dir = std::getenv("PPREID_BENCH_DIR");
  return dir && *dir ? fs::path(dir) : fs::temp_directory_path();
}

void BM_GenerateToDisk(benchmark::State& state) {
  SynthOptions o;
  o.ids = 100;
  o.cameras = 6;
  o.images_per_id = 12;
  o.municipalities = 2;
  o.distractors = 50;
  o.threads = static_cast<int>(state.range(0));
  const fs::path dir =
      bench_dir() / ("ppreid-bench-synth-" + std::to_string(std::random_device{}()));
  std::int64_t images = 0;
  int run = 0;
  for (auto _ : state) {
    o.seed = static_cast<std::uint64_t>(++run);
    const SynthSummary s = generate(o, dir, /*overwrite=*/true);
    images += s.train_images + s.query_images + s.gallery_images + o.distractors + o.junk;
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  state.counters["images/s"] =
      benchmark::Counter(static_cast<double>(images), benchmark::Counter::kIsRate);
}

BENCHMARK(BM_Render)->Args({128, 64})->Args({64, 32});
BENCHMARK(BM_RenderEncodeJpeg)->Args({128, 64})->Args({64, 32});
BENCHMARK(BM_GenerateToDisk)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
