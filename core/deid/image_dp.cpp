#include "core/deid/image_dp.h"

#include <cmath>
#include <limits>
#include <sstream>

#include "core/util/error.h"

namespace ppreid::deid {

ImageDpOptions image_dp_preset(char preset, double epsilon) {
  ImageDpOptions o;
  o.epsilon = epsilon;
  switch (preset) {
    case 'A': o.pixel_bits = 0; o.color_bits = 6; break;
    case 'B': o.pixel_bits = 1; o.color_bits = 5; break;
    case 'C': o.pixel_bits = 2; o.color_bits = 4; break;
    case 'D': o.pixel_bits = 0; o.color_bits = 0; break;
    default:
      throw UsageError(std::string("--preset: '") + preset + "' is not one of A, B, C, D");
  }
  return o;
}

const char* calibration_name(Calibration c) { return c == Calibration::kPaper ? "paper" : "tight"; }

int blocks_of(int width, int height, int pixel_bits) {
  int block = 1 << pixel_bits;
  return ((width + block - 1) / block) * ((height + block - 1) / block);
}

void validate(const ImageDpOptions& o) {
  if (!(o.epsilon > 0.0) || std::isnan(o.epsilon))
    throw UsageError("--epsilon must be > 0 (got " + (std::ostringstream() << o.epsilon).str() +
                     "); smaller is more private, 'inf' disables the noise");
  if (o.pixel_bits < 0 || o.pixel_bits > 6)
    throw UsageError("--pixel-bits must be in [0, 6] (blocks of 1 to 64 pixels), got " +
                     std::to_string(o.pixel_bits));
  if (o.color_bits < 0 || o.color_bits > 7)
    throw UsageError("--color-bits must be in [0, 7] (keeping 8 down to 1 bit per channel), got " +
                     std::to_string(o.color_bits));
  if (o.calibration == Calibration::kPaper && o.color_bits == 7)
    throw UsageError(
        "--calibration paper with --color-bits 7 is refused: with L = 2 levels the paper's "
        "Delta = blocks * (L-1)^3 = blocks is smaller than the true L1 sensitivity 3 * blocks, "
        "so the promised epsilon would not hold; use --calibration tight");
}

double sensitivity(const ImageDpOptions& o, int width, int height) {
  if (o.calibration == Calibration::kTight) return l1_sensitivity(o, width, height);
  validate(o);
  double blocks = blocks_of(width, height, o.pixel_bits);
  double span = static_cast<double>((1 << (8 - o.color_bits)) - 1);  // L - 1
  return blocks * span * span * span;
}

double l1_sensitivity(const ImageDpOptions& o, int width, int height) {
  validate(o);
  return blocks_of(width, height, o.pixel_bits) * 3.0 * ((1 << (8 - o.color_bits)) - 1);
}

ImageDp::ImageDp(ImageDpOptions options) : options_(options) { validate(options_); }

nlohmann::json ImageDp::parameters() const {
  nlohmann::json j = {{"epsilon", std::isinf(options_.epsilon) ? nlohmann::json("inf")
                                                               : nlohmann::json(options_.epsilon)},
                      {"pixel_bits", options_.pixel_bits},
                      {"color_bits", options_.color_bits},
                      {"levels", 1 << (8 - options_.color_bits)},
                      {"calibration", calibration_name(options_.calibration)},
                      {"noise", "discrete Laplace, clamped, sampled from certified 2^-64 tables"},
                      {"randomness", options_.seed ? "drbg (AES-256-CTR, seeded)" : "csprng"}};
  // Never the seed itself: it regenerates every noise word, i.e. it undoes the release.
  return j;
}

const ClampedLaplaceTable& ImageDp::table_for(int width, int height) const {
  std::lock_guard lock(mu_);
  auto& slot = tables_[{width, height}];
  if (!slot) {
    double t = options_.epsilon / sensitivity(options_, width, height);
    if (std::isinf(options_.epsilon)) t = std::numeric_limits<double>::infinity();
    slot = std::make_unique<ClampedLaplaceTable>(1 << (8 - options_.color_bits), t);
  }
  return *slot;
}

double ImageDp::certified_epsilon(int width, int height) const {
  return table_for(width, height).certified_loss_per_level() *
         l1_sensitivity(options_, width, height);
}

cv::Mat ImageDp::apply_with(const cv::Mat& bgr, util::RandomSource& rng) const {
  if (bgr.empty() || bgr.type() != CV_8UC3)
    throw Error("image DP needs an 8-bit 3-channel image (got type " +
                std::to_string(bgr.type()) + ", " + std::to_string(bgr.cols) + "x" +
                std::to_string(bgr.rows) + ")");
  const int w = bgr.cols, h = bgr.rows, c = options_.color_bits;
  const std::uint8_t half = c > 0 ? static_cast<std::uint8_t>(1 << (c - 1)) : 0;
  const ClampedLaplaceTable& table = table_for(w, h);
  cv::Mat out(h, w, CV_8UC3);

  // One random word per released value, drawn in a single call: per-row calls into OpenSSL
  // cost more than the sampling itself.
  thread_local std::vector<std::uint32_t> words;
  thread_local std::vector<std::uint8_t> levels;

  if (options_.pixel_bits == 0) {
    // Every pixel is its own block: quantize, noise and render value by value.
    cv::Mat src = bgr.isContinuous() ? bgr : bgr.clone();
    const size_t n = static_cast<size_t>(w) * h * 3;
    words.resize(n);
    rng.fill(words.data(), n);
    table.release_rendered(src.ptr<std::uint8_t>(0), words.data(), n, c, half,
                           out.ptr<std::uint8_t>(0), rng);
    return out;
  }

  // Block means (edge blocks average the pixels they have), then the same per-value steps.
  const int b = options_.pixel_bits, block = 1 << b;
  const int bw = (w + block - 1) / block, bh = (h + block - 1) / block;
  std::vector<std::uint32_t> sums(static_cast<size_t>(bw) * bh * 3, 0);
  for (int y = 0; y < h; ++y) {
    const std::uint8_t* src = bgr.ptr<std::uint8_t>(y);
    std::uint32_t* row = sums.data() + static_cast<size_t>(y >> b) * bw * 3;
    for (int x = 0; x < w; ++x) {
      std::uint32_t* cell = row + (x >> b) * 3;
      cell[0] += src[3 * x];
      cell[1] += src[3 * x + 1];
      cell[2] += src[3 * x + 2];
    }
  }
  levels.resize(sums.size());
  for (int by = 0; by < bh; ++by) {
    int rows = std::min(block, h - by * block);
    for (int bx = 0; bx < bw; ++bx) {
      std::uint32_t count = static_cast<std::uint32_t>(rows * std::min(block, w - bx * block));
      for (int ch = 0; ch < 3; ++ch) {
        size_t i = (static_cast<size_t>(by) * bw + bx) * 3 + ch;
        levels[i] = static_cast<std::uint8_t>(((sums[i] + count / 2) / count) >> c);
      }
    }
  }
  words.resize(levels.size());
  rng.fill(words.data(), words.size());
  table.apply(levels.data(), words.data(), levels.size(), rng);
  for (auto& v : levels) v = static_cast<std::uint8_t>((v << c) | half);
  for (int y = 0; y < h; ++y) {
    std::uint8_t* dst = out.ptr<std::uint8_t>(y);
    const std::uint8_t* lv = levels.data() + static_cast<size_t>(y >> b) * bw * 3;
    for (int x = 0; x < w; ++x) {
      const std::uint8_t* cell = lv + (x >> b) * 3;
      dst[3 * x] = cell[0];
      dst[3 * x + 1] = cell[1];
      dst[3 * x + 2] = cell[2];
    }
  }
  return out;
}

cv::Mat ImageDp::apply(const cv::Mat& bgr, const ImageContext& ctx) const {
  if (options_.seed) {
    util::DrbgSource rng(*options_.seed, ctx.index);
    return apply_with(bgr, rng);
  }
  thread_local util::CsprngSource csprng;
  return apply_with(bgr, csprng);
}

}  // namespace ppreid::deid
