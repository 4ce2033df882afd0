#include "core/data/synth/scene.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>
#include <opencv2/imgproc.hpp>

#include "core/data/synth/palette.h"

namespace ppreid::data::synth {
namespace {

// Mostly a brightness change with a little tint, as between bricks or tiles of one material.
cv::Scalar jittered(cv::Vec3b base, util::Rng& rng, double amount) {
  const double common = rng.normal(0, amount);
  cv::Scalar out;
  for (int k = 0; k < 3; ++k)
    out[k] = std::clamp(base[k] + common + rng.normal(0, 0.25 * amount), 0.0, 255.0);
  return out;
}

// Low-frequency variation (stains, shade, patches of foliage): coarse noise upsampled smoothly.
void add_smooth_noise(cv::Mat& region, int cell, double amplitude, cv::RNG& noise) {
  const int gw = std::max(2, region.cols / std::max(1, cell) + 2);
  const int gh = std::max(2, region.rows / std::max(1, cell) + 2);
  cv::Mat coarse(gh, gw, CV_32FC1);
  noise.fill(coarse, cv::RNG::NORMAL, 0.0, amplitude);
  cv::Mat fine;
  cv::resize(coarse, fine, region.size(), 0, 0, cv::INTER_CUBIC);
  cv::Mat fine3;
  cv::merge(std::vector<cv::Mat>{fine, fine, fine}, fine3);
  cv::Mat as_float;
  region.convertTo(as_float, CV_32FC3);
  as_float += fine3;
  as_float.convertTo(region, CV_8UC3);
}

void draw_bricks(cv::Mat& region, util::Rng& rng) {
  const cv::Vec3b base = rng.bernoulli(0.6) ? cv::Vec3b(50, 75, 150) : cv::Vec3b(150, 150, 145);
  const cv::Vec3b mortar = scale_brightness(base, 1.45);
  region.setTo(cv::Scalar(mortar[0], mortar[1], mortar[2]));
  const int bh = std::max(3, static_cast<int>(std::lround(region.rows * 0.09)));
  const int bw = std::max(6, static_cast<int>(std::lround(bh * rng.uniform(2.0, 2.8))));
  for (int row = 0, y = 0; y < region.rows; ++row, y += bh) {
    const int shift = (row & 1) ? bw / 2 : 0;
    for (int x = -shift; x < region.cols; x += bw) {
      cv::rectangle(region, cv::Rect(x + 1, y + 1, bw - 1, bh - 1), jittered(base, rng, 14),
                    cv::FILLED);
    }
  }
}

void draw_wall_with_windows(cv::Mat& region, util::Rng& rng) {
  // Facade paints: off-white, beige, grey, terracotta, pale blue.
  static constexpr std::array<std::array<uchar, 3>, 5> kFacades{{{{200, 205, 210}},
                                                                 {{150, 185, 205}},
                                                                 {{150, 150, 150}},
                                                                 {{90, 120, 175}},
                                                                 {{190, 170, 150}}}};
  const auto& f = kFacades[static_cast<std::size_t>(rng.uniform_int(0, kFacades.size() - 1))];
  const cv::Vec3b wall = scale_brightness(cv::Vec3b(f[0], f[1], f[2]), rng.uniform(0.8, 1.1));
  region.setTo(cv::Scalar(wall[0], wall[1], wall[2]));
  const int ww = std::max(4, region.cols / static_cast<int>(rng.uniform_int(3, 5)));
  const int wh = std::max(4, static_cast<int>(ww * rng.uniform(0.8, 1.6)));
  const cv::Scalar glass = jittered(cv::Vec3b(90, 70, 50), rng, 20);
  const cv::Scalar frame = jittered(scale_brightness(wall, 0.6), rng, 10);
  for (int y = wh / 3; y < region.rows; y += wh + wh / 2) {
    for (int x = ww / 4; x < region.cols; x += ww + ww / 2) {
      cv::rectangle(region, cv::Rect(x, y, ww, wh), frame, cv::FILLED);
      cv::rectangle(region, cv::Rect(x + 1, y + 1, ww - 2, wh - 2), glass, cv::FILLED);
    }
  }
}

void draw_foliage(cv::Mat& region, util::Rng& rng, cv::RNG& noise) {
  region.setTo(jittered(cv::Vec3b(50, 110, 60), rng, 12));
  add_smooth_noise(region, std::max(2, region.cols / 6), 25.0, noise);
  const int blobs = static_cast<int>(rng.uniform_int(4, 10));
  for (int i = 0; i < blobs; ++i) {
    const cv::Point c(static_cast<int>(rng.uniform_int(0, region.cols)),
                      static_cast<int>(rng.uniform_int(0, region.rows)));
    const int r = std::max(2, static_cast<int>(region.cols * rng.uniform(0.05, 0.18)));
    cv::circle(region, c, r, jittered(cv::Vec3b(35, 80, 40), rng, 15), cv::FILLED, cv::LINE_AA);
  }
}

void draw_gradient(cv::Mat& region, util::Rng& rng) {
  const cv::Scalar top = jittered(cv::Vec3b(215, 200, 185), rng, 20);
  const cv::Scalar bottom = jittered(cv::Vec3b(140, 140, 140), rng, 25);
  for (int y = 0; y < region.rows; ++y) {
    const double t = region.rows > 1 ? static_cast<double>(y) / (region.rows - 1) : 0.0;
    region.row(y).setTo(top * (1.0 - t) + bottom * t);
  }
}

void draw_tiles(cv::Mat& region, util::Rng& rng) {
  const cv::Vec3b base = rng.bernoulli(0.5) ? cv::Vec3b(150, 160, 170) : cv::Vec3b(120, 125, 125);
  const cv::Scalar grout = jittered(scale_brightness(base, 0.65), rng, 6);
  region.setTo(grout);
  const int ts = std::max(4, static_cast<int>(region.cols * rng.uniform(0.14, 0.3)));
  const int th = std::max(3, ts / 2);
  for (int y = 0; y < region.rows; y += th) {
    for (int x = 0; x < region.cols; x += ts) {
      cv::rectangle(region, cv::Rect(x, y, ts - 1, th - 1), jittered(base, rng, 9), cv::FILLED);
    }
  }
}

void draw_asphalt(cv::Mat& region, util::Rng& rng, cv::RNG& noise) {
  region.setTo(jittered(cv::Vec3b(85, 85, 88), rng, 10));
  add_smooth_noise(region, std::max(2, region.cols / 4), 10.0, noise);
  if (rng.bernoulli(0.5)) {
    // A painted road or parking line.
    const int y = static_cast<int>(rng.uniform_int(0, std::max(0, region.rows - 2)));
    cv::rectangle(region, cv::Rect(0, y, region.cols, std::max(1, region.rows / 12)),
                  cv::Scalar(210, 215, 220), cv::FILLED);
  }
}

void draw_grass(cv::Mat& region, util::Rng& rng, cv::RNG& noise) {
  region.setTo(jittered(cv::Vec3b(55, 140, 85), rng, 12));
  add_smooth_noise(region, std::max(2, region.cols / 8), 18.0, noise);
}

cv::Mat make_background(util::Rng& rng, int rows, int cols) {
  cv::Mat bg(rows, cols, CV_8UC3);
  cv::RNG noise(rng());
  const int horizon = std::clamp(static_cast<int>(rows * rng.uniform(0.25, 0.62)), 1, rows - 1);
  cv::Mat wall = bg.rowRange(0, horizon);
  cv::Mat ground = bg.rowRange(horizon, rows);
  switch (rng.uniform_int(0, 3)) {
    case 0:
      draw_bricks(wall, rng);
      break;
    case 1:
      draw_wall_with_windows(wall, rng);
      break;
    case 2:
      draw_foliage(wall, rng, noise);
      break;
    default:
      draw_gradient(wall, rng);
  }
  switch (rng.uniform_int(0, 2)) {
    case 0:
      draw_tiles(ground, rng);
      break;
    case 1:
      draw_asphalt(ground, rng, noise);
      break;
    default:
      draw_grass(ground, rng, noise);
  }
  // Fine texture everywhere, then a touch of blur so the backdrop is less crisp than the person
  // (as with a real depth of field).
  cv::Mat grain(rows, cols, CV_16SC3);
  noise.fill(grain, cv::RNG::NORMAL, 0, 5);
  cv::Mat widened;
  bg.convertTo(widened, CV_16SC3);
  widened += grain;
  widened.convertTo(bg, CV_8UC3);
  cv::GaussianBlur(bg, bg, cv::Size(0, 0), 0.7);
  return bg;
}

}  // namespace

CameraStyle sample_camera_style(util::Rng& rng, int height, int width) {
  CameraStyle s;
  s.background = make_background(rng, height + height / 4, width + width / 2);
  const double brightness = rng.uniform(0.72, 1.22);
  for (int k = 0; k < 3; ++k) {
    s.gain[k] =
        static_cast<float>(brightness * (1.0 + std::clamp(rng.normal(0, 0.06), -0.12, 0.12)));
  }
  s.brightness_sd = rng.uniform(0.02, 0.07);
  const int preferred = static_cast<int>(rng.uniform_int(0, kNumViews - 1));
  const int second = static_cast<int>(rng.uniform_int(0, kNumViews - 1));
  for (int v = 0; v < kNumViews; ++v) s.view_weights[static_cast<std::size_t>(v)] = 0.2;
  s.view_weights[static_cast<std::size_t>(second)] += 0.5;
  s.view_weights[static_cast<std::size_t>(preferred)] += 1.0;
  s.person_height = rng.uniform(0.8, 0.93);
  s.person_height_sd = rng.uniform(0.02, 0.05);
  s.x_jitter = rng.uniform(0.02, 0.07);
  s.blur_sigma = rng.bernoulli(0.35) ? rng.uniform(0.5, 1.2) * height / 128.0 : 0.0;
  s.occlusion_p = rng.uniform(0.05, 0.3);
  s.noise_sd = rng.uniform(1.0, 5.0);
  s.standing_p = rng.uniform(0.03, 0.2);
  return s;
}

View sample_view(const CameraStyle& s, util::Rng& rng) {
  double total = 0.0;
  for (double w : s.view_weights) total += w;
  double pick = rng.uniform(0.0, total);
  for (int v = 0; v < kNumViews - 1; ++v) {
    pick -= s.view_weights[static_cast<std::size_t>(v)];
    if (pick < 0) return static_cast<View>(v);
  }
  return static_cast<View>(kNumViews - 1);
}

ImageParams sample_image_params(const CameraStyle& s, util::Rng& rng, int height, int width) {
  ImageParams p;
  p.view = sample_view(s, rng);
  p.gait.phase = rng.uniform(0.0, 2.0 * std::numbers::pi);
  p.gait.amplitude = rng.bernoulli(s.standing_p) ? 0.05 : rng.uniform(0.75, 1.15);
  p.person_height = std::clamp(rng.normal(s.person_height, s.person_height_sd), 0.68, 1.0);
  p.center_x = 0.5 + std::clamp(rng.normal(0.0, s.x_jitter), -0.18, 0.18);
  // Detector boxes are fitted to the person: small margin at the bottom, sometimes feet cut off.
  p.feet_y = rng.bernoulli(0.08) ? rng.uniform(1.0, 1.06)
                                 : 1.0 - (1.0 - p.person_height) * rng.uniform(0.15, 0.6);
  const int max_x = s.background.cols - width;
  const int max_y = s.background.rows - height;
  p.background_offset = {static_cast<int>(rng.uniform_int(0, std::max(0, max_x))),
                         static_cast<int>(rng.uniform_int(0, std::max(0, max_y)))};
  p.brightness = std::clamp(1.0 + rng.normal(0.0, s.brightness_sd), 0.8, 1.2);
  if (rng.bernoulli(s.occlusion_p)) {
    const double k = rng.uniform();
    p.occluder = k < 0.35 ? Occluder::kPole : k < 0.7 ? Occluder::kCar : Occluder::kBlob;
    p.occluder_position = rng.uniform();
    p.occluder_size = rng.uniform();
  }
  p.blur_sigma = s.blur_sigma * rng.uniform(0.8, 1.2);
  p.noise_sd = s.noise_sd;
  return p;
}

void draw_occluder(const ImageParams& p, Canvas& canvas, int height, int width, util::Rng& rng) {
  const float w = static_cast<float>(width), h = static_cast<float>(height);
  const float pos = static_cast<float>(p.occluder_position);
  const float size = static_cast<float>(p.occluder_size);
  switch (p.occluder) {
    case Occluder::kNone:
      return;
    case Occluder::kPole: {
      const float half = (0.03f + 0.04f * size) * w;
      const float x = pos * w;
      const std::array<cv::Point2f, 4> pole{
          cv::Point2f(x - half, -1.f), cv::Point2f(x + half, -1.f), cv::Point2f(x + half, h + 1),
          cv::Point2f(x - half, h + 1)};
      const cv::Vec3b metal = rng.bernoulli(0.5) ? cv::Vec3b(120, 125, 125) : cv::Vec3b(40, 80, 40);
      canvas.polygon(pole);
      Fill fill = Fill::solid(metal);
      fill.volume_cx = x - 0.3f * half;
      fill.volume_half = 1.3f * half;
      canvas.paint(fill);
      return;
    }
    case Occluder::kCar: {
      // The rounded corner of a parked car entering from one side at the bottom.
      const bool from_left = pos < 0.5f;
      const float top = h * (1.f - (0.2f + 0.22f * size));
      const float reach = w * (0.45f + 0.4f * size);
      const float x0 = from_left ? -1.f : w + 1.f;
      const float x1 = from_left ? reach : w - reach;
      const float r = std::min(0.35f * (h - top), std::abs(x1 - x0) / 2.f);
      const float dir = from_left ? 1.f : -1.f;
      const std::array<cv::Point2f, 5> body{cv::Point2f(x0, top), cv::Point2f(x1 - dir * r, top),
                                            cv::Point2f(x1, top + r), cv::Point2f(x1, h + 1.f),
                                            cv::Point2f(x0, h + 1.f)};
      canvas.polygon(body);
      canvas.paint(Fill::solid(sample_clothing_color(rng, false)));
      const float wheel = 0.4f * (h - top);
      canvas.circle(cv::Point2f(x1 - dir * 1.6f * wheel, h), wheel);
      canvas.paint(Fill::solid(cv::Vec3b(25, 25, 25)));
      return;
    }
    case Occluder::kBlob: {
      // Another passer-by's shoulder or bag cutting into the box from the side.
      const float cx = pos < 0.5f ? 0.f : w;
      const float cy = h * static_cast<float>(rng.uniform(0.3, 0.9));
      canvas.ellipse({cx, cy}, {(0.18f + 0.2f * size) * w, (0.12f + 0.18f * size) * h},
                     static_cast<float>(rng.uniform(-30, 30)));
      canvas.paint(Fill::solid(sample_clothing_color(rng, rng.bernoulli(0.5))));
      return;
    }
  }
}

}  // namespace ppreid::data::synth
