#include "core/deid/body_regions.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

namespace ppreid::deid {
namespace {

using data::Joint;

struct Extent {
  float x0 = 2.f, y0 = 2.f, x1 = -1.f, y1 = -1.f;
  int n = 0;
  void add(const data::Keypoint& k) {
    if (!k.visible()) return;
    x0 = std::min(x0, k.x), y0 = std::min(y0, k.y);
    x1 = std::max(x1, k.x), y1 = std::max(y1, k.y);
    ++n;
  }
};

cv::Rect to_pixels(float x0, float y0, float x1, float y1, cv::Size size) {
  cv::Rect r(cv::Point(static_cast<int>(std::floor(x0 * size.width)),
                       static_cast<int>(std::floor(y0 * size.height))),
             cv::Point(static_cast<int>(std::ceil(x1 * size.width)),
                       static_cast<int>(std::ceil(y1 * size.height))));
  return r & cv::Rect(0, 0, size.width, size.height);
}

cv::Rect fixed_box(BodyRegion region, cv::Size size) {
  return region == BodyRegion::kHead ? to_pixels(0.25f, 0.f, 0.75f, 0.2f, size)
                                     : to_pixels(0.1f, 0.18f, 0.9f, 1.f, size);
}

// The torso width in normalized x, or a typical value when a shoulder is hidden (side views).
float shoulder_span(const data::Pose& p) {
  const auto& r = p[Joint::kRShoulder];
  const auto& l = p[Joint::kLShoulder];
  if (r.visible() && l.visible()) return std::max(std::abs(r.x - l.x), 0.15f);
  return 0.25f;
}

std::optional<cv::Rect> head_from_pose(const data::Pose& p, cv::Size size) {
  const auto& neck = p[Joint::kNeck];
  Extent head;
  for (Joint j : {Joint::kNose, Joint::kREye, Joint::kLEye, Joint::kREar, Joint::kLEar})
    head.add(p[j]);
  if (!neck.visible() && head.n == 0) return std::nullopt;
  // Heads are about 0.8 shoulder widths wide and tall, on top of the neck.
  float unit = shoulder_span(p) * static_cast<float>(size.width) / static_cast<float>(size.height);
  float cx = head.n ? 0.5f * (head.x0 + head.x1) : neck.x;
  float bottom = neck.visible() ? neck.y : head.y1 + 0.5f * unit;
  float top = std::min(head.n ? head.y0 - 0.5f * unit : bottom - 1.1f * unit, bottom - unit);
  float half_w = 0.45f * shoulder_span(p);
  if (head.n) half_w = std::max(half_w, 0.5f * (head.x1 - head.x0) + 0.05f);
  return to_pixels(cx - half_w, top, cx + half_w, bottom, size);
}

std::optional<cv::Rect> body_from_pose(const data::Pose& p, cv::Size size) {
  Extent body;
  for (Joint j : {Joint::kNeck, Joint::kRShoulder, Joint::kRElbow, Joint::kRWrist,
                  Joint::kLShoulder, Joint::kLElbow, Joint::kLWrist, Joint::kRHip, Joint::kRKnee,
                  Joint::kRAnkle, Joint::kLHip, Joint::kLKnee, Joint::kLAnkle})
    body.add(p[j]);
  if (body.n < 4) return std::nullopt;
  // Joints are centres of limbs; widen by half a limb and reach below the ankles for the feet.
  float pad_x = 0.12f, pad_bottom = 0.06f;
  return to_pixels(body.x0 - pad_x, body.y0, body.x1 + pad_x, body.y1 + pad_bottom, size);
}

}  // namespace

bool region_from_keypoints(BodyRegion region, const data::Pose* pose) {
  if (!pose) return false;
  cv::Size probe(64, 128);
  return region == BodyRegion::kHead ? head_from_pose(*pose, probe).has_value()
                                     : body_from_pose(*pose, probe).has_value();
}

cv::Rect region_box(BodyRegion region, const data::Pose* pose, cv::Size size) {
  if (pose) {
    auto box = region == BodyRegion::kHead ? head_from_pose(*pose, size)
                                           : body_from_pose(*pose, size);
    if (box && box->area() > 0) return *box;
  }
  return fixed_box(region, size);
}

}  // namespace ppreid::deid
