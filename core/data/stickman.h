#pragma once

#include <torch/torch.h>

#include <opencv2/core.hpp>

#include "core/data/keypoints.h"

namespace ppreid::data {

// Stickman rendering of a pose, the conditioning image of pose-guided generators (VUNet):
//   channel 0: right limbs (shoulder-elbow-wrist, hip-knee-ankle) and the right side of the
//              face (nose-eye-ear),
//   channel 1: the same on the left,
//   channel 2: the torso quad (r_shoulder, l_shoulder, l_hip, r_hip) filled, and neck-nose.
// Channels are semantic, not colours: channel 0 is not "blue". A limb with a missing endpoint
// is skipped; the torso needs all four corners. Joints map to pixel centres: x * width - 0.5.
// Pixels are exactly 0 or 255 (no anti-aliasing, as VUNet's stickmen: a binary mask is what
// the conditioning encoder expects, and AA fills bleed a pixel outward). Joints are placed with
// sub-pixel precision, and the stroke width follows the resolution (stickman_thickness) so a
// pose renders alike at 64x32 and at 256x128.

// Stroke width in pixels for an image of this size: min(height, width) / 20 rounded, >= 1.
// (OpenCV may paint one extra pixel on each side of a thick line.)
int stickman_thickness(int height, int width);

// CV_8UC3 image (height x width) of the pose. Throws ppreid::Error for a non-positive size.
cv::Mat render_stickman(const Pose& pose, int height, int width);

// The same as a float32 tensor [3,height,width] in [0,1], channel order as above.
torch::Tensor stickman_tensor(const Pose& pose, int height, int width);

// At least one shoulder and one hip visible: the torso can be placed, so the pose can condition a
// generator. With all four the torso is the filled quad; in a side view (the far shoulder or
// hip hidden, as pose estimators report it) it is drawn edge-on as a band from the visible
// shoulder to the visible hip. With no shoulder or no hip there is no torso to place.
bool usable_for_pose_conditioning(const Pose& pose);

}  // namespace ppreid::data
