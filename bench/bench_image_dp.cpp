// epsilon-image DP throughput on one core at 128x64 (the papers' crop size), presets A-D, with
// the OpenSSL CSPRNG and with the seeded AES-CTR DRBG, against a straightforward per-pixel
// implementation (cv::Mat::at, a fresh inverse-CDF discrete Laplace draw per value, clamp).
//   build/bench_image_dp --benchmark_min_time=1
#include <benchmark/benchmark.h>

#include <cmath>
#include <opencv2/core.hpp>

#include "core/deid/discrete_laplace.h"
#include "core/deid/image_dp.h"

namespace {

using namespace ppreid;

cv::Mat test_image() {
  cv::Mat img(128, 64, CV_8UC3);
  cv::theRNG().state = 42;
  cv::randu(img, 0, 256);
  return img;
}

// The textbook version of the mechanism, written for clarity rather than speed.
cv::Mat straightforward_dp(const cv::Mat& img, const deid::ImageDpOptions& o,
                           util::RandomSource& rng) {
  const int block = 1 << o.pixel_bits, c = o.color_bits, levels = 1 << (8 - c);
  const double t = o.epsilon / deid::sensitivity(o, img.cols, img.rows);
  cv::Mat out(img.size(), img.type());
  for (int by = 0; by < img.rows; by += block)
    for (int bx = 0; bx < img.cols; bx += block)
      for (int ch = 0; ch < 3; ++ch) {
        double sum = 0;
        int n = 0;
        for (int y = by; y < std::min(by + block, img.rows); ++y)
          for (int x = bx; x < std::min(bx + block, img.cols); ++x, ++n)
            sum += img.at<cv::Vec3b>(y, x)[ch];
        int level = static_cast<int>(std::lround(sum / n)) >> c;
        std::int64_t noisy = level + deid::sample_discrete_laplace(t, rng);
        int released = static_cast<int>(std::clamp<std::int64_t>(noisy, 0, levels - 1));
        int value = (released << c) | (c > 0 ? 1 << (c - 1) : 0);
        for (int y = by; y < std::min(by + block, img.rows); ++y)
          for (int x = bx; x < std::min(bx + block, img.cols); ++x)
            out.at<cv::Vec3b>(y, x)[ch] = static_cast<std::uint8_t>(value);
      }
  return out;
}

constexpr double kEpsilon = 1e5;

void BM_ImageDp(benchmark::State& state) {
  const char preset = static_cast<char>(state.range(0));
  const bool seeded = state.range(1) == 1;
  deid::ImageDpOptions o = deid::image_dp_preset(preset, kEpsilon);
  deid::ImageDp dp(o);
  cv::Mat img = test_image();
  util::DrbgSource drbg(1, 0);
  util::CsprngSource csprng;
  util::RandomSource& rng = seeded ? static_cast<util::RandomSource&>(drbg) : csprng;
  for (auto _ : state) benchmark::DoNotOptimize(dp.apply_with(img, rng).data);
  state.counters["images/s"] = benchmark::Counter(state.iterations(), benchmark::Counter::kIsRate);
  state.counters["MB/s"] = benchmark::Counter(state.iterations() * img.total() * 3 / 1e6,
                                              benchmark::Counter::kIsRate);
  state.SetLabel(std::string("preset ") + preset + (seeded ? " drbg" : " csprng"));
}

void BM_StraightforwardDp(benchmark::State& state) {
  const char preset = static_cast<char>(state.range(0));
  deid::ImageDpOptions o = deid::image_dp_preset(preset, kEpsilon);
  cv::Mat img = test_image();
  util::DrbgSource drbg(1, 0);
  for (auto _ : state) benchmark::DoNotOptimize(straightforward_dp(img, o, drbg).data);
  state.counters["images/s"] = benchmark::Counter(state.iterations(), benchmark::Counter::kIsRate);
  state.SetLabel(std::string("preset ") + preset + " drbg, per-pixel reference");
}

// The randomness alone: one 32-bit word per value of a 128x64 RGB image.
void BM_RandomWords(benchmark::State& state) {
  const bool seeded = state.range(0) == 1;
  util::DrbgSource drbg(1, 0);
  util::CsprngSource csprng;
  util::RandomSource& rng = seeded ? static_cast<util::RandomSource&>(drbg) : csprng;
  std::vector<std::uint32_t> words(128 * 64 * 3);
  for (auto _ : state) {
    rng.fill(words.data(), words.size());
    benchmark::DoNotOptimize(words.data());
  }
  state.counters["MB/s"] = benchmark::Counter(state.iterations() * words.size() * 4 / 1e6,
                                              benchmark::Counter::kIsRate);
  state.SetLabel(seeded ? "drbg" : "csprng");
}
BENCHMARK(BM_RandomWords)->Arg(1)->Arg(0);

void presets(benchmark::internal::Benchmark* b) {
  for (char p : {'A', 'B', 'C', 'D'}) b->Args({p, 1})->Args({p, 0});
}

BENCHMARK(BM_ImageDp)->Apply(presets);
BENCHMARK(BM_StraightforwardDp)->Arg('A')->Arg('B')->Arg('C')->Arg('D');

}  // namespace

BENCHMARK_MAIN();
