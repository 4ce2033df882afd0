#include "core/data/synth/renderer.h"

#include <cmath>
#include <opencv2/imgproc.hpp>
#include <string>

#include "core/data/synth/painter.h"
#include "core/data/synth/skeleton.h"
#include "core/util/error.h"

namespace ppreid::data::synth {

RenderedImage render_image(const IdentityTraits& traits, const CameraStyle& style,
                           const ImageParams& params, int height, int width, util::Rng& rng) {
  const cv::Rect window(params.background_offset, cv::Size(width, height));
  if (style.background.empty() ||
      (window & cv::Rect(cv::Point(0, 0), style.background.size())) != window)
    throw Error("render_image: a " + std::to_string(height) + "x" + std::to_string(width) +
                " crop at offset (" + std::to_string(window.x) + "," + std::to_string(window.y) +
                ") does not fit the camera background of " + std::to_string(style.background.rows) +
                "x" + std::to_string(style.background.cols) +
                "; create the CameraStyle and ImageParams for this image size");

  RenderedImage out;
  out.image = style.background(window).clone();
  out.person_mask = cv::Mat(height, width, CV_8UC1, cv::Scalar(0));

  if (params.person) {
    const Body body = pose_body(traits, params.gait);
    const float body_px =
        static_cast<float>(params.person_height * height * (0.9 + 0.1 * traits.stature));
    const cv::Point2f feet(static_cast<float>(params.center_x * width),
                           static_cast<float>(params.feet_y * height));
    const Projector projector(params.view, feet, body_px);

    Canvas shadow(out.image, nullptr);
    shadow.ellipse(feet, {0.17f * body_px, 0.025f * body_px});
    Fill dark = Fill::solid(cv::Vec3b(0, 0, 0));
    dark.opacity = 0.3f;
    shadow.paint(dark);

    Canvas canvas(out.image, &out.person_mask);
    paint_person(traits, body, projector, canvas);

    for (int j = 0; j < kNumJoints; ++j) {
      if (hidden_by_view(params.view, j)) continue;
      const cv::Point2f p = projector(body.joints[static_cast<std::size_t>(j)]);
      const int x = static_cast<int>(std::lround(p.x));
      const int y = static_cast<int>(std::lround(p.y));
      if (x < 0 || y < 0 || x >= width || y >= height) continue;
      // Pixel-centre convention shared with the stickman renderer: pixel i covers [i, i+1).
      out.pose.joints[static_cast<std::size_t>(j)] = {(p.x + 0.5f) / width, (p.y + 0.5f) / height};
    }
  }

  if (params.occluder != Occluder::kNone) {
    cv::Mat occluded(height, width, CV_8UC1, cv::Scalar(0));
    Canvas canvas(out.image, &occluded);
    draw_occluder(params, canvas, height, width, rng);
    for (Keypoint& k : out.pose.joints) {
      if (!k.visible()) continue;
      const int x = static_cast<int>(std::lround(k.x * width - 0.5f));
      const int y = static_cast<int>(std::lround(k.y * height - 0.5f));
      if (occluded.at<uchar>(y, x) >= 128) k = Keypoint{};
    }
    // What remains of the person is what the occluder lets through.
    cv::Mat let_through;
    cv::bitwise_not(occluded, let_through);
    cv::multiply(out.person_mask, let_through, out.person_mask, 1.0 / 255.0);
  }

  const double g = params.brightness;
  cv::multiply(out.image, cv::Scalar(style.gain[0] * g, style.gain[1] * g, style.gain[2] * g),
               out.image);
  if (params.blur_sigma > 0.2)
    cv::GaussianBlur(out.image, out.image, cv::Size(0, 0), params.blur_sigma);
  if (params.noise_sd > 0.0) {
    cv::Mat noise(height, width, CV_16SC3);
    cv::RNG(rng()).fill(noise, cv::RNG::NORMAL, 0.0, params.noise_sd);
    cv::Mat widened;
    out.image.convertTo(widened, CV_16SC3);
    widened += noise;
    widened.convertTo(out.image, CV_8UC3);
  }
  return out;
}

}  // namespace ppreid::data::synth
