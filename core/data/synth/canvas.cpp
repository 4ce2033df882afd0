#include "core/data/synth/canvas.h"

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <vector>

namespace ppreid::data::synth {
namespace {

// OpenCV draws sub-pixel geometry through fixed-point coordinates with `shift` fractional bits.
constexpr int kShift = 4;
constexpr float kOne = 1 << kShift;

cv::Point fixed(cv::Point2f p) {
  return {static_cast<int>(std::lround(p.x * kOne)), static_cast<int>(std::lround(p.y * kOne))};
}

}  // namespace

Fill Fill::solid(const cv::Vec3b& bgr, float shade) {
  Fill f;
  f.color = cv::Vec3f(bgr[0], bgr[1], bgr[2]);
  f.color2 = f.color;
  f.shade = shade;
  return f;
}

Canvas::Canvas(cv::Mat& image, cv::Mat* mask)
    : image_(image), mask_(mask), coverage_(image.size(), CV_8UC1, cv::Scalar(0)) {}

void Canvas::touch(float x0, float y0, float x1, float y1) {
  cv::Rect r(static_cast<int>(std::floor(x0)) - 2, static_cast<int>(std::floor(y0)) - 2,
             static_cast<int>(std::ceil(x1 - x0)) + 5, static_cast<int>(std::ceil(y1 - y0)) + 5);
  r &= cv::Rect(0, 0, image_.cols, image_.rows);
  dirty_ = dirty_.area() == 0 ? r : (dirty_ | r);
}

Canvas& Canvas::polygon(std::span<const cv::Point2f> points) {
  if (points.size() < 3) return *this;
  std::vector<cv::Point> pts;
  pts.reserve(points.size());
  float x0 = points[0].x, x1 = x0, y0 = points[0].y, y1 = y0;
  for (const cv::Point2f& p : points) {
    pts.push_back(fixed(p));
    x0 = std::min(x0, p.x), x1 = std::max(x1, p.x);
    y0 = std::min(y0, p.y), y1 = std::max(y1, p.y);
  }
  touch(x0, y0, x1, y1);
  const cv::Point* data = pts.data();
  const int n = static_cast<int>(pts.size());
  cv::fillPoly(coverage_, &data, &n, 1, cv::Scalar(255), cv::LINE_AA, kShift);
  return *this;
}

Canvas& Canvas::segment(cv::Point2f a, cv::Point2f b, float thickness) {
  const float r = std::max(0.5f, thickness / 2.f);
  const cv::Point2f d = b - a;
  const float len = std::hypot(d.x, d.y);
  if (len > 1e-3f) {
    const cv::Point2f n(-d.y / len * r, d.x / len * r);
    const cv::Point2f quad[4] = {a + n, b + n, b - n, a - n};
    polygon(quad);
  }
  circle(a, r);
  circle(b, r);
  return *this;
}

Canvas& Canvas::ellipse(cv::Point2f center, cv::Size2f half_axes, float angle_deg, float start_deg,
                        float end_deg) {
  const float reach = std::max(half_axes.width, half_axes.height);
  touch(center.x - reach, center.y - reach, center.x + reach, center.y + reach);
  const cv::Size axes(static_cast<int>(std::lround(half_axes.width * kOne)),
                      static_cast<int>(std::lround(half_axes.height * kOne)));
  cv::ellipse(coverage_, fixed(center), axes, angle_deg, start_deg, end_deg, cv::Scalar(255),
              cv::FILLED, cv::LINE_AA, kShift);
  return *this;
}

void Canvas::discard() {
  if (dirty_.area() > 0) coverage_(dirty_).setTo(0);
  dirty_ = cv::Rect();
}

void Canvas::paint(const Fill& fill) {
  if (dirty_.area() == 0) return;
  const bool textured = fill.texture == Texture::kStripes || fill.texture == Texture::kChecks ||
                        fill.texture == Texture::kTwoTone;
  const float period = std::max(2.f, fill.period);
  const float inv_half = fill.volume_half > 0.f ? 1.f / fill.volume_half : 0.f;
  for (int y = dirty_.y; y < dirty_.y + dirty_.height; ++y) {
    uchar* cov = coverage_.ptr<uchar>(y);
    cv::Vec3b* px = image_.ptr<cv::Vec3b>(y);
    uchar* m = mask_ ? mask_->ptr<uchar>(y) : nullptr;
    const int row_band = static_cast<int>(std::floor((y - fill.origin.y) / period));
    for (int x = dirty_.x; x < dirty_.x + dirty_.width; ++x) {
      const uchar c = cov[x];
      if (c == 0) continue;
      cov[x] = 0;
      cv::Vec3f color = fill.color;
      if (textured) {
        if (fill.texture == Texture::kStripes) {
          if (row_band & 1) color = fill.color2;
        } else if (fill.texture == Texture::kChecks) {
          // Plaid rather than a chessboard: crossing bands mix, intersections take color2.
          const int col_band = static_cast<int>(std::floor((x - fill.origin.x) / period));
          const int bands = (row_band & 1) + (col_band & 1);
          if (bands == 1) color = (fill.color + fill.color2) * 0.5f;
          if (bands == 2) color = fill.color2;
        } else if (y < fill.split_y) {
          color = fill.color2;
        }
      }
      float gain = fill.shade;
      if (inv_half > 0.f) {
        const float u = std::min(1.f, std::abs(x - fill.volume_cx) * inv_half);
        gain *= 1.f - 0.25f * u * u;
      }
      const float alpha = c * (1.f / 255.f) * fill.opacity;
      cv::Vec3b& p = px[x];
      for (int k = 0; k < 3; ++k) {
        p[k] = cv::saturate_cast<uchar>(p[k] + alpha * (color[k] * gain - p[k]));
      }
      if (m && fill.opacity >= 1.f) m[x] = std::max(m[x], c);
    }
  }
  dirty_ = cv::Rect();
}

}  // namespace ppreid::data::synth
