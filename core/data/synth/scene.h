#pragma once

#include <array>
#include <opencv2/core.hpp>

#include "core/data/synth/canvas.h"
#include "core/data/synth/skeleton.h"
#include "core/util/rng.h"

namespace ppreid::data::synth {

// What makes one camera's images look like that camera: its backdrop, lighting, how it frames
// people, and what gets in the way. ReID models must learn to see through all of it.
struct CameraStyle {
  cv::Mat background;             // CV_8UC3, larger than an image: each image crops a window
  cv::Vec3f gain{1.f, 1.f, 1.f};  // illumination gain per BGR channel (includes colour cast)
  double brightness_sd = 0.05;    // per-image illumination change
  std::array<double, kNumViews> view_weights{1.0, 1.0, 1.0, 1.0};  // front, back, left, right
  double person_height = 0.86;  // body height / image height (mean)
  double person_height_sd = 0.04;
  double x_jitter = 0.04;   // sd of the body centre, fraction of the width
  double blur_sigma = 0.0;  // pixels; some cameras are out of focus
  double occlusion_p = 0.1;
  double noise_sd = 2.0;    // sensor noise, grey levels
  double standing_p = 0.1;  // people waiting rather than walking
};

// A camera's style for images of `height` x `width`.
CameraStyle sample_camera_style(util::Rng& rng, int height, int width);

enum class Occluder { kNone, kPole, kCar, kBlob };

// Everything that varies from one image to the next within a camera.
struct ImageParams {
  bool person = true;  // false: background only (a distractor)
  View view = View::kFront;
  Gait gait;
  double person_height = 0.86;  // body height / image height
  double center_x = 0.5;        // body centre x / width
  double feet_y = 0.97;         // ground contact y / height; > 1 cuts the feet off
  cv::Point background_offset{0, 0};
  double brightness = 1.0;  // multiplies the camera gain
  Occluder occluder = Occluder::kNone;
  double occluder_position = 0.5;  // 0..1 across the image
  double occluder_size = 0.5;      // 0..1
  double blur_sigma = 0.0;
  double noise_sd = 0.0;
};

// A view drawn from the camera's preferences (cameras see people walk mostly one way).
View sample_view(const CameraStyle& style, util::Rng& rng);

ImageParams sample_image_params(const CameraStyle& style, util::Rng& rng, int height, int width);

// Draws an occluding object over `image`; `canvas` must paint into `image` with the occluder
// mask, so the caller learns which pixels (and joints) it covers.
void draw_occluder(const ImageParams& params, Canvas& canvas, int height, int width,
                   util::Rng& rng);

}  // namespace ppreid::data::synth
