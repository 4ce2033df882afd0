// Training data pipeline throughput, in images per second (the "images/s" counter):
//   BM_Serial         decode + transform one image at a time on the calling thread, then
//                     torch::stack: the straightforward loop a first version would write;
//   BM_Loader/w       TrainLoader with w decoding workers (P=16, K=4, prefetch 4);
//   BM_ImageToTensor  tensor::image_to_tensor on a 128x64 image vs BM_NaiveToTensor, a per-pixel
//                     cv::Mat::at<> loop, so the conversion speed-up is visible.
// The dataset is ~1000 synthetic 128x64 JPEGs (100 identities x 10) written to a temp dir at
// start-up and removed at exit. Run:  build/bench_loader [--benchmark_filter=...]
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <filesystem>
#include <memory>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>
#include <string>

#include "core/data/loader.h"
#include "core/data/transforms.h"
#include "core/tensor/image_tensor.h"
#include "core/util/image.h"
#include "core/util/rng.h"

namespace {

namespace fs = std::filesystem;
using ppreid::data::Dataset;
using ppreid::data::ImageRecord;
using ppreid::data::LoaderOptions;
using ppreid::data::TransformOptions;

constexpr int kIds = 100;
constexpr int kPerId = 10;

// A rough pedestrian: coloured background, torso and legs rectangles, head circle, noise, so
// the JPEGs have realistic entropy and decode cost.
cv::Mat draw_person(std::mt19937& gen) {
  std::uniform_int_distribution<int> colour(0, 255);
  auto c = [&] { return cv::Scalar(colour(gen), colour(gen), colour(gen)); };
  cv::Mat m(128, 64, CV_8UC3, c());
  cv::rectangle(m, cv::Rect(0, 90 + colour(gen) % 20, 64, 40), c(), cv::FILLED);
  const int x = 16 + colour(gen) % 10;
  cv::rectangle(m, cv::Rect(x, 30, 28, 40), c(), cv::FILLED);
  cv::rectangle(m, cv::Rect(x + 2, 70, 10, 50), c(), cv::FILLED);
  cv::rectangle(m, cv::Rect(x + 16, 70, 10, 50), c(), cv::FILLED);
  cv::circle(m, cv::Point(x + 14, 18), 10, c(), cv::FILLED, cv::LINE_AA);
  cv::Mat noise(m.size(), CV_8UC3);
  cv::randn(noise, cv::Scalar::all(0), cv::Scalar::all(12));
  cv::add(m, noise, m);
  cv::GaussianBlur(m, m, cv::Size(3, 3), 0.8);
  return m;
}

// The shared temp dataset, created on first use and removed at exit.
class BenchDataset {
 public:
  BenchDataset() {
    dataset_.root = fs::temp_directory_path() /
                    ("ppreid-bench-loader-" + std::to_string(std::random_device{}()));
    fs::create_directories(dataset_.root / "bounding_box_train");
    std::mt19937 gen(1);
    for (int id = 0; id < kIds; ++id)
      for (int i = 0; i < kPerId; ++i) {
        ImageRecord r;
        r.pid = id + 1;
        r.camid = i % 6;
        r.label = id;
        char name[64];
        std::snprintf(name, sizeof(name), "%04d_c%ds1_%06d_01.jpg", r.pid, r.camid + 1, i);
        r.path = std::string("bounding_box_train/") + name;
        cv::imwrite((dataset_.root / r.path).string(), draw_person(gen));
        dataset_.train.push_back(r);
      }
    dataset_.num_train_ids = kIds;
  }
  ~BenchDataset() {
    std::error_code ec;
    fs::remove_all(dataset_.root, ec);
  }
  const Dataset& dataset() const { return dataset_; }

 private:
  Dataset dataset_;
};

const Dataset& bench_dataset() {
  static BenchDataset instance;
  return instance.dataset();
}

LoaderOptions loader_options(int workers) {
  LoaderOptions o;
  o.p = 16;
  o.k = 4;
  o.workers = workers;
  o.prefetch_batches = 4;
  o.seed = 1;
  return o;
}

void BM_Serial(benchmark::State& state) {
  const Dataset& dataset = bench_dataset();
  const ppreid::data::PkSampler sampler(dataset.train, 16, 4, 1);
  const ppreid::data::TrainTransform transform{TransformOptions{}};
  int64_t images = 0;
  int epoch = 0;
  for (auto _ : state) {
    for (const auto& plan : sampler.epoch(epoch++)) {
      std::vector<torch::Tensor> samples;
      samples.reserve(plan.size());
      for (const auto& request : plan) {
        ppreid::util::Rng rng(request.seed);
        const cv::Mat image =
            ppreid::util::decode_image(dataset.absolute(dataset.train[request.index]));
        samples.push_back(transform(image, rng));
      }
      benchmark::DoNotOptimize(torch::stack(samples));
      images += static_cast<int64_t>(plan.size());
    }
  }
  state.counters["images/s"] =
      benchmark::Counter(static_cast<double>(images), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Serial)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Loader(benchmark::State& state) {
  const Dataset& dataset = bench_dataset();
  ppreid::data::TrainLoader loader(dataset, TransformOptions{},
                                   loader_options(static_cast<int>(state.range(0))));
  int64_t images = 0;
  int epoch = 0;
  for (auto _ : state) {
    loader.start_epoch(epoch++);
    while (auto batch = loader.next()) {
      benchmark::DoNotOptimize(batch->images.data_ptr());
      images += batch->size();
    }
  }
  state.counters["images/s"] =
      benchmark::Counter(static_cast<double>(images), benchmark::Counter::kIsRate);
}
// Real time: with workers the decoding happens on other threads.
BENCHMARK(BM_Loader)->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

constexpr ppreid::util::ChannelStats kMean = {0.485f, 0.456f, 0.406f};
constexpr ppreid::util::ChannelStats kStd = {0.229f, 0.224f, 0.225f};

cv::Mat sample_image() {
  std::mt19937 gen(3);
  return draw_person(gen);
}

void BM_ImageToTensor(benchmark::State& state) {
  const cv::Mat image = sample_image();
  for (auto _ : state) benchmark::DoNotOptimize(ppreid::tensor::image_to_tensor(image, kMean, kStd));
  state.counters["images/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ImageToTensor);

// What the conversion looks like without thinking about speed: at<> per pixel, accessor writes.
torch::Tensor naive_image_to_tensor(const cv::Mat& bgr) {
  torch::Tensor out = torch::empty({3, bgr.rows, bgr.cols});
  auto a = out.accessor<float, 3>();
  for (int y = 0; y < bgr.rows; ++y)
    for (int x = 0; x < bgr.cols; ++x) {
      const cv::Vec3b px = bgr.at<cv::Vec3b>(y, x);
      for (int c = 0; c < 3; ++c) a[c][y][x] = (px[2 - c] / 255.f - kMean[c]) / kStd[c];
    }
  return out;
}

void BM_NaiveToTensor(benchmark::State& state) {
  const cv::Mat image = sample_image();
  for (auto _ : state) benchmark::DoNotOptimize(naive_image_to_tensor(image));
  state.counters["images/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_NaiveToTensor);

}  // namespace

int main(int argc, char** argv) {
  // One intra-op thread: the comparison is about the loader's workers, not LibTorch's pool.
  torch::set_num_threads(1);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
