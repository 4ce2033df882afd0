#include "core/data/synth/skeleton.h"

#include <cmath>

namespace ppreid::data::synth {
namespace {

BodyPoint along(const BodyPoint& from, double length, double angle, double lateral) {
  // `angle` is measured from straight down, positive forwards (sagittal plane).
  return {from.a + lateral, from.v - length * std::cos(angle), from.f + length * std::sin(angle)};
}

}  // namespace

BodyPoint lean_point(const BodyPoint& p, double hip_v, double lean) {
  const double dv = p.v - hip_v;
  return {p.a, hip_v + dv * std::cos(lean) - p.f * std::sin(lean),
          p.f * std::cos(lean) + dv * std::sin(lean)};
}

const char* view_name(View view) {
  switch (view) {
    case View::kFront:
      return "front";
    case View::kBack:
      return "back";
    case View::kSideLeft:
      return "side_left";
    case View::kSideRight:
      return "side_right";
  }
  return "?";
}

Body pose_body(const IdentityTraits& t, const Gait& gait) {
  Body b;
  b.lean = t.lean;
  b.head_ry = 0.062 * t.head_scale;
  b.head_rx = 0.048 * t.head_scale;
  b.head_center = {0.0, 1.0 - b.head_ry, 0.0};
  const double shoulder_v = 1.0 - 2.0 * b.head_ry - 0.048;
  b.hip_v = 0.52 - 0.2 * (t.head_scale - 1.0);
  b.shoulder_v = shoulder_v;
  const double torso = shoulder_v - b.hip_v;

  auto& j = b.joints;
  auto at = [&](Joint joint) -> BodyPoint& { return j[static_cast<int>(joint)]; };
  const BodyPoint& hc = b.head_center;
  const double rx = b.head_rx;
  const double ry = b.head_ry;
  at(Joint::kNose) = {0.0, hc.v - 0.2 * ry, 0.98 * rx};
  at(Joint::kREye) = {-0.38 * rx, hc.v + 0.08 * ry, 0.82 * rx};
  at(Joint::kLEye) = {0.38 * rx, hc.v + 0.08 * ry, 0.82 * rx};
  at(Joint::kREar) = {-0.85 * rx, hc.v, -0.05 * rx};
  at(Joint::kLEar) = {0.85 * rx, hc.v, -0.05 * rx};
  at(Joint::kNeck) = {0.0, shoulder_v + 0.006, 0.0};
  at(Joint::kRShoulder) = {-t.shoulder_width / 2, shoulder_v, 0.0};
  at(Joint::kLShoulder) = {t.shoulder_width / 2, shoulder_v, 0.0};

  // The upper body (head, neck, shoulders) bends forward about the hips; arms hang from the
  // bent shoulders, so lean first and attach the arms afterwards.
  if (t.lean != 0.0) {
    for (Joint joint : {Joint::kNose, Joint::kREye, Joint::kLEye, Joint::kREar, Joint::kLEar,
                        Joint::kNeck, Joint::kRShoulder, Joint::kLShoulder}) {
      at(joint) = lean_point(at(joint), b.hip_v, t.lean);
    }
    b.head_center = lean_point(b.head_center, b.hip_v, t.lean);
  }

  const double swing = gait.amplitude * t.gait;
  const double s = std::sin(gait.phase);
  const double c = std::cos(gait.phase);

  // Legs: left thigh forward when sin(phase) > 0; the knee bends while the leg swings forward.
  const double leg_amp = 0.38 * swing;
  const double knee_bend = 0.75 * swing;
  const double hip_a = 0.75 * t.hip_width / 2;
  const double leg = b.hip_v - 0.045;
  const double thigh = 0.52 * leg;
  const double shin = leg - thigh;
  struct LegSpec {
    Joint hip, knee, ankle;
    double side, theta, bend;
    int toe;
  };
  const LegSpec legs[2] = {
      {Joint::kRHip, Joint::kRKnee, Joint::kRAnkle, -1.0, -leg_amp * s,
       knee_bend * std::max(0.0, -c), 0},
      {Joint::kLHip, Joint::kLKnee, Joint::kLAnkle, 1.0, leg_amp * s, knee_bend * std::max(0.0, c),
       1},
  };
  for (const LegSpec& l : legs) {
    at(l.hip) = {l.side * hip_a, b.hip_v, 0.0};
    at(l.knee) = along(at(l.hip), thigh, l.theta, -l.side * 0.08 * hip_a);
    at(l.ankle) = along(at(l.knee), shin, l.theta - l.bend, -l.side * 0.08 * hip_a);
    const BodyPoint& ankle = at(l.ankle);
    b.toes[static_cast<std::size_t>(l.toe)] = {ankle.a, ankle.v - 0.03, ankle.f + 0.055};
  }

  // Arms swing opposite to the legs; forearms flex forwards a little, more on the forward swing.
  const double arm_amp = 0.34 * swing;
  const double upper = 0.6 * torso;
  const double fore = 0.5 * torso;
  struct ArmSpec {
    Joint shoulder, elbow, wrist;
    double side, alpha;
  };
  const double right_amp = t.bag && t.bag_side == 0 ? 0.3 * arm_amp : arm_amp;
  const double left_amp = t.bag && t.bag_side == 1 ? 0.3 * arm_amp : arm_amp;
  const ArmSpec arms[2] = {
      {Joint::kRShoulder, Joint::kRElbow, Joint::kRWrist, -1.0, right_amp * s},
      {Joint::kLShoulder, Joint::kLElbow, Joint::kLWrist, 1.0, -left_amp * s},
  };
  for (const ArmSpec& arm : arms) {
    const double flex = 0.12 + 0.5 * std::max(0.0, arm.alpha);
    at(arm.elbow) = along(at(arm.shoulder), upper, arm.alpha, arm.side * 0.014);
    at(arm.wrist) = along(at(arm.elbow), fore, arm.alpha + flex, arm.side * 0.006);
  }
  return b;
}

Projector::Projector(View view, cv::Point2f feet, float body_px)
    : view_(view), feet_(feet), body_px_(body_px) {}

cv::Point2f Projector::operator()(const BodyPoint& p) const {
  double x = 0.0;
  switch (view_) {
    case View::kFront:
      x = p.a;
      break;
    case View::kBack:
      x = -p.a;
      break;
    case View::kSideLeft:
      // A small lateral term keeps the near and far limbs from coinciding exactly.
      x = -p.f + 0.15 * p.a;
      break;
    case View::kSideRight:
      x = p.f - 0.15 * p.a;
      break;
  }
  return {feet_.x + body_px_ * static_cast<float>(x), feet_.y - body_px_ * static_cast<float>(p.v)};
}

double Projector::depth(const BodyPoint& p) const {
  switch (view_) {
    case View::kFront:
      return -p.f;
    case View::kBack:
      return p.f;
    case View::kSideLeft:
      return -p.a;
    case View::kSideRight:
      return p.a;
  }
  return 0.0;
}

int Projector::facing() const {
  if (view_ == View::kSideLeft) return -1;
  if (view_ == View::kSideRight) return 1;
  return 0;
}

bool is_right_joint(int joint) {
  switch (static_cast<Joint>(joint)) {
    case Joint::kRShoulder:
    case Joint::kRElbow:
    case Joint::kRWrist:
    case Joint::kRHip:
    case Joint::kRKnee:
    case Joint::kRAnkle:
    case Joint::kREye:
    case Joint::kREar:
      return true;
    default:
      return false;
  }
}

bool is_left_joint(int joint) {
  switch (static_cast<Joint>(joint)) {
    case Joint::kLShoulder:
    case Joint::kLElbow:
    case Joint::kLWrist:
    case Joint::kLHip:
    case Joint::kLKnee:
    case Joint::kLAnkle:
    case Joint::kLEye:
    case Joint::kLEar:
      return true;
    default:
      return false;
  }
}

bool hidden_by_view(View view, int joint) {
  switch (view) {
    case View::kFront:
      return false;
    case View::kBack:
      return joint == static_cast<int>(Joint::kNose) || joint == static_cast<int>(Joint::kREye) ||
             joint == static_cast<int>(Joint::kLEye);
    case View::kSideLeft:
      return is_right_joint(joint);
    case View::kSideRight:
      return is_left_joint(joint);
  }
  return false;
}

}  // namespace ppreid::data::synth
