#pragma once

#include <opencv2/core.hpp>

#include "core/data/keypoints.h"
#include "core/data/synth/scene.h"
#include "core/data/synth/traits.h"
#include "core/util/rng.h"

namespace ppreid::data::synth {

struct RenderedImage {
  cv::Mat image;        // CV_8UC3 BGR, height x width
  Pose pose;            // joints as drawn, normalized: x = (pixel x + 0.5) / width, as
                        // core/data/stickman.h reads them
  cv::Mat person_mask;  // CV_8UC1 coverage of the visible person (0 background, 255 person)
};

// Renders one crop: the camera's backdrop, `traits`' person posed and framed by `params`, the
// occluder, then the camera's lighting, blur and noise. A joint is visible in `pose` only when
// the view shows it, it lies inside the crop, and the occluder does not cover it. `traits` is
// ignored when params.person is false. Throws ppreid::Error when `style` was made for a smaller
// image.
RenderedImage render_image(const IdentityTraits& traits, const CameraStyle& style,
                           const ImageParams& params, int height, int width, util::Rng& rng);

}  // namespace ppreid::data::synth
