#pragma once

#include <array>
#include <opencv2/core.hpp>

#include "core/data/keypoints.h"
#include "core/data/synth/traits.h"

namespace ppreid::data::synth {

// Where the person faces. kFront: towards the camera, so the person's right shoulder is on the
// image left; kBack mirrors it. kSideLeft/kSideRight: walking towards the image left/right, so
// the person's right/left side is the far side.
enum class View { kFront, kBack, kSideLeft, kSideRight };
inline constexpr int kNumViews = 4;

const char* view_name(View view);

// Body frame, in body heights: `a` lateral (positive towards the person's left), `v` up from the
// ground, `f` forward (the direction the person faces).
struct BodyPoint {
  double a = 0.0;
  double v = 0.0;
  double f = 0.0;
};

// Phase of the walking cycle (radians) and how much the limbs swing (0 = standing).
struct Gait {
  double phase = 0.0;
  double amplitude = 1.0;
};

// The 18 joints plus the extra geometry the painter needs, all in the body frame.
struct Body {
  std::array<BodyPoint, kNumJoints> joints{};
  BodyPoint head_center;
  double head_rx = 0.0;             // head half-width (front view), body heights
  double head_ry = 0.0;             // head half-height
  double hip_v = 0.0;               // height of the hip joints
  double shoulder_v = 0.0;          // height of the shoulders before the lean
  std::array<BodyPoint, 2> toes{};  // [0] right, [1] left: feet point forwards
  double lean = 0.0;
  const BodyPoint& operator[](Joint j) const { return joints[static_cast<int>(j)]; }
};

// Joint positions of `traits`' body in a walking pose. The arm on the bag side swings less, as
// it holds the strap.
Body pose_body(const IdentityTraits& traits, const Gait& gait);

// Rotates an upper-body point forwards by `lean` radians about the hip centre.
BodyPoint lean_point(const BodyPoint& p, double hip_v, double lean);

// Orthographic camera for one view: body frame -> image pixels.
class Projector {
 public:
  // `feet`: image position of the ground point under the body centre; `body_px`: body height in
  // pixels.
  Projector(View view, cv::Point2f feet, float body_px);

  cv::Point2f operator()(const BodyPoint& p) const;
  // Larger is farther from the camera; used to order the drawing of limbs.
  double depth(const BodyPoint& p) const;
  float px_per_unit() const { return body_px_; }
  View view() const { return view_; }
  bool side() const { return view_ == View::kSideLeft || view_ == View::kSideRight; }
  // Image x direction the person faces in side views (-1 left, +1 right); 0 otherwise.
  int facing() const;

 private:
  View view_;
  cv::Point2f feet_;
  float body_px_;
};

// Joints a keypoint detector cannot see from this view whatever the crop: the face from behind,
// the far-side limbs, eye and ear from the side.
bool hidden_by_view(View view, int joint);

// True for joints on the person's right side (r_shoulder ... r_ear).
bool is_right_joint(int joint);
bool is_left_joint(int joint);

}  // namespace ppreid::data::synth
