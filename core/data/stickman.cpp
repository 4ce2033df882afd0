#include "core/data/stickman.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/util/error.h"

namespace ppreid::data {
namespace {

using J = Joint;
using Segment = std::pair<J, J>;

constexpr std::array<Segment, 6> kRightSegments = {{{J::kRShoulder, J::kRElbow},
                                                    {J::kRElbow, J::kRWrist},
                                                    {J::kRHip, J::kRKnee},
                                                    {J::kRKnee, J::kRAnkle},
                                                    {J::kNose, J::kREye},
                                                    {J::kREye, J::kREar}}};
constexpr std::array<Segment, 6> kLeftSegments = {{{J::kLShoulder, J::kLElbow},
                                                   {J::kLElbow, J::kLWrist},
                                                   {J::kLHip, J::kLKnee},
                                                   {J::kLKnee, J::kLAnkle},
                                                   {J::kNose, J::kLEye},
                                                   {J::kLEye, J::kLEar}}};
constexpr std::array<J, 4> kTorso = {J::kRShoulder, J::kLShoulder, J::kLHip, J::kRHip};

// Sub-pixel precision for OpenCV's drawing calls: coordinates carry kShift fractional bits.
constexpr int kShift = 4;
constexpr double kScale = 1 << kShift;

cv::Point to_pixel(const Keypoint& k, int height, int width) {
  return {static_cast<int>(std::lround((k.x * width - 0.5) * kScale)),
          static_cast<int>(std::lround((k.y * height - 0.5) * kScale))};
}

void draw_segments(cv::Mat& plane, const Pose& pose, const Segment* begin, const Segment* end,
                   int thickness) {
  for (const Segment* s = begin; s != end; ++s) {
    const Keypoint& a = pose[s->first];
    const Keypoint& b = pose[s->second];
    if (!a.visible() || !b.visible()) continue;
    cv::line(plane, to_pixel(a, plane.rows, plane.cols), to_pixel(b, plane.rows, plane.cols),
             cv::Scalar(255), thickness, cv::LINE_8, kShift);
  }
}

// Each channel is drawn on its own plane: drawing a colour into a 3-channel image would also
// write zeros into the other channels where strokes of different channels overlap.
std::array<cv::Mat, 3> render_planes(const Pose& pose, int height, int width) {
  if (height <= 0 || width <= 0)
    throw Error("render_stickman: the image size must be positive, got " + std::to_string(height) +
                "x" + std::to_string(width));
  const int thickness = stickman_thickness(height, width);
  std::array<cv::Mat, 3> planes;
  for (auto& p : planes) p = cv::Mat::zeros(height, width, CV_8U);

  draw_segments(planes[0], pose, kRightSegments.data(),
                kRightSegments.data() + kRightSegments.size(), thickness);
  draw_segments(planes[1], pose, kLeftSegments.data(), kLeftSegments.data() + kLeftSegments.size(),
                thickness);

  if (std::all_of(kTorso.begin(), kTorso.end(), [&](J j) { return pose[j].visible(); })) {
    std::array<cv::Point, 4> quad;
    for (std::size_t i = 0; i < kTorso.size(); ++i)
      quad[i] = to_pixel(pose[kTorso[i]], height, width);
    // fillPoly rather than fillConvexPoly: a twisted detection can make the quad non-convex.
    const cv::Point* polygon = quad.data();
    const int count = static_cast<int>(quad.size());
    cv::fillPoly(planes[2], &polygon, &count, 1, cv::Scalar(255), cv::LINE_8, kShift);
  } else if (usable_for_pose_conditioning(pose)) {
    // Side view: the far shoulder or hip hides behind the body. The torso is seen edge-on, a
    // band from the visible shoulder to the visible hip, twice the stroke width.
    const Keypoint& shoulder = pose[J::kRShoulder].visible() ? pose[J::kRShoulder] : pose[J::kLShoulder];
    const Keypoint& hip = pose[J::kRHip].visible() ? pose[J::kRHip] : pose[J::kLHip];
    cv::line(planes[2], to_pixel(shoulder, height, width), to_pixel(hip, height, width),
             cv::Scalar(255), 2 * thickness, cv::LINE_8, kShift);
  }
  const Segment neck_nose{J::kNeck, J::kNose};
  draw_segments(planes[2], pose, &neck_nose, &neck_nose + 1, thickness);
  return planes;
}

}  // namespace

int stickman_thickness(int height, int width) {
  return std::max(1, static_cast<int>(std::lround(std::min(height, width) / 20.0)));
}

cv::Mat render_stickman(const Pose& pose, int height, int width) {
  const auto planes = render_planes(pose, height, width);
  cv::Mat out;
  cv::merge(planes.data(), planes.size(), out);
  return out;
}

torch::Tensor stickman_tensor(const Pose& pose, int height, int width) {
  const auto planes = render_planes(pose, height, width);
  torch::Tensor out = torch::empty({3, height, width}, torch::kFloat32);
  float* base = out.data_ptr<float>();
  for (int c = 0; c < 3; ++c) {
    // A header over the tensor's memory: convertTo writes in place, `out` keeps ownership.
    cv::Mat dst(height, width, CV_32F, base + static_cast<std::ptrdiff_t>(c) * height * width);
    planes[static_cast<std::size_t>(c)].convertTo(dst, CV_32F, 1.0 / 255.0);
  }
  return out;
}

bool usable_for_pose_conditioning(const Pose& pose) {
  return (pose[J::kRShoulder].visible() || pose[J::kLShoulder].visible()) &&
         (pose[J::kRHip].visible() || pose[J::kLHip].visible());
}

}  // namespace ppreid::data
