#pragma once

#include <opencv2/core.hpp>

#include "core/data/keypoints.h"

namespace ppreid::deid {

enum class BodyRegion { kHead, kBody };

// The pixel box covering the head or the body (neck down) of the pedestrian in a crop.
// From keypoints when the pose has enough visible joints; otherwise a fixed box for upright
// pedestrian crops (head: top 20% of rows, middle half of columns; body: rows from 18% down,
// middle 80% of columns), which is where Market-1501-style detectors put people.
cv::Rect region_box(BodyRegion region, const data::Pose* pose, cv::Size size);

// Whether region_box() used keypoints (true) or the fixed box (false) for this pose.
bool region_from_keypoints(BodyRegion region, const data::Pose* pose);

}  // namespace ppreid::deid
