#pragma once

#include <opencv2/core.hpp>
#include <span>

#include "core/data/synth/traits.h"

namespace ppreid::data::synth {

// How a layer of shapes is coloured. Texture coordinates are anchored at `origin` so patterns
// move with the person instead of staying fixed to the image.
struct Fill {
  cv::Vec3f color{0, 0, 0};
  cv::Vec3f color2{0, 0, 0};
  Texture texture = Texture::kPlain;
  float period = 4.f;  // stripe/check period, pixels
  cv::Point2f origin{0, 0};
  float split_y = 0.f;    // kTwoTone: rows above are color2
  float shade = 1.f;      // brightness multiplier (far-side limbs are darker)
  float volume_cx = 0.f;  // > 0 half width: darken towards the sides like a cylinder
  float volume_half = 0.f;
  float opacity = 1.f;  // < 1 for shadows

  static Fill solid(const cv::Vec3b& bgr, float shade = 1.f);
};

// Anti-aliased painting with coverage: shapes are rasterized into a coverage layer, then composited
// in one pass with the fill. The same coverage updates `mask` (when given) so the caller knows
// exactly which pixels were drawn, which is what lets keypoints be checked against the image.
class Canvas {
 public:
  // `image` CV_8UC3; `mask` CV_8UC1 of the same size or nullptr.
  Canvas(cv::Mat& image, cv::Mat* mask);

  Canvas& polygon(std::span<const cv::Point2f> points);
  // A capsule: a segment with round ends, `thickness` pixels wide (sub-pixel precise).
  Canvas& segment(cv::Point2f a, cv::Point2f b, float thickness);
  Canvas& ellipse(cv::Point2f center, cv::Size2f half_axes, float angle_deg = 0.f,
                  float start_deg = 0.f, float end_deg = 360.f);
  Canvas& circle(cv::Point2f center, float radius) { return ellipse(center, {radius, radius}); }
  // Composites the pending shapes with `fill` and clears them.
  void paint(const Fill& fill);
  // Drops the pending shapes.
  void discard();

 private:
  void touch(float x0, float y0, float x1, float y1);

  cv::Mat& image_;
  cv::Mat* mask_;
  cv::Mat coverage_;
  cv::Rect dirty_;
};

}  // namespace ppreid::data::synth
