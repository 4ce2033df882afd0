#include "core/data/synth/painter.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "core/data/synth/palette.h"

namespace ppreid::data::synth {
namespace {

constexpr int kRightSide = 0;
constexpr int kLeftSide = 1;

struct LimbJoints {
  Joint root, mid, end;
};
constexpr std::array<LimbJoints, 2> kLegs{
    {{Joint::kRHip, Joint::kRKnee, Joint::kRAnkle}, {Joint::kLHip, Joint::kLKnee, Joint::kLAnkle}}};
constexpr std::array<LimbJoints, 2> kArms{{{Joint::kRShoulder, Joint::kRElbow, Joint::kRWrist},
                                           {Joint::kLShoulder, Joint::kLElbow, Joint::kLWrist}}};

constexpr float kFarShade = 0.78f;
constexpr float kSleeveShade = 0.93f;

cv::Point2f lerp(cv::Point2f a, cv::Point2f b, float t) { return a + (b - a) * t; }

class PersonPainter {
 public:
  PersonPainter(const IdentityTraits& t, const Body& b, const Projector& p, Canvas& c)
      : t_(t), b_(b), p_(p), c_(c), s_(p.px_per_unit()) {
    head_ = p_(b_.head_center);
    rx_ = px(b_.head_rx);
    ry_ = px(b_.head_ry);
    split_y_ = p_(upper({0.0, b_.shoulder_v - 0.075, 0.0})).y;
  }

  void paint() {
    if (p_.side()) {
      paint_side();
    } else if (p_.view() == View::kFront) {
      paint_front();
    } else {
      paint_back();
    }
  }

 private:
  // ---- geometry helpers ----
  float px(double body_units) const { return static_cast<float>(body_units * s_); }
  cv::Point2f at(Joint j) const { return p_(b_[j]); }
  cv::Point2f at(const BodyPoint& q) const { return p_(q); }
  // Torso and accessories are described upright; the lean bends them with the spine.
  BodyPoint upper(BodyPoint q) const { return lean_point(q, b_.hip_v, b_.lean); }
  double thickness(double base) const { return base * t_.limb_thickness; }

  // Orders the two sides far to near for limbs whose depth varies with the walking phase.
  std::array<int, 2> far_to_near(const std::array<LimbJoints, 2>& limbs) const {
    if (p_.depth(b_[limbs[kRightSide].mid]) >= p_.depth(b_[limbs[kLeftSide].mid]))
      return {kRightSide, kLeftSide};
    return {kLeftSide, kRightSide};
  }
  int far_side() const { return p_.view() == View::kSideLeft ? kRightSide : kLeftSide; }

  Fill garment(const cv::Vec3b& color, const cv::Vec3b& color2, Texture texture,
               float shade) const {
    Fill f = Fill::solid(color, shade);
    f.color2 = cv::Vec3f(color2[0], color2[1], color2[2]);
    f.texture = texture == Texture::kLogo ? Texture::kPlain : texture;
    f.period = std::max(2.f, px(0.034));
    f.origin = at(Joint::kNeck);
    f.split_y = split_y_;
    return f;
  }
  Fill upper_fill(float shade) const {
    return garment(t_.upper, t_.upper2, t_.upper_texture, shade);
  }
  Fill lower_fill(float shade) const {
    Fill f = garment(t_.lower, t_.lower2, t_.lower_texture, shade);
    if (f.texture == Texture::kTwoTone) f.texture = Texture::kPlain;
    return f;
  }

  // ---- body parts ----
  void leg(int side, float shade) {
    const LimbJoints& l = kLegs[static_cast<std::size_t>(side)];
    const cv::Point2f hip = at(l.root), knee = at(l.mid), ankle = at(l.end);
    const float thigh_w = px(thickness(0.082));
    const float shin_w = px(thickness(0.062));
    const LowerStyle style = t_.lower_style;
    if (style != LowerStyle::kTrousers) {
      c_.segment(knee, ankle, shin_w * 0.9f);
      if (style != LowerStyle::kLongSkirt) c_.segment(hip, knee, thigh_w * 0.88f);
      c_.paint(Fill::solid(t_.skin, shade));
    }
    if (style == LowerStyle::kTrousers) {
      c_.segment(hip, knee, thigh_w).segment(knee, ankle, shin_w);
      c_.paint(lower_fill(shade));
    } else if (style == LowerStyle::kShorts) {
      c_.segment(hip, lerp(hip, knee, 0.55f), thigh_w * 1.08f);
      c_.paint(lower_fill(shade));
    }
    const BodyPoint& a = b_[l.end];
    c_.segment(at(BodyPoint{a.a, a.v - 0.012, a.f - 0.012}),
               at(b_.toes[static_cast<std::size_t>(side)]), px(0.038));
    c_.paint(Fill::solid(t_.shoes, shade));
  }

  // The waistband region, or the skirt that covers both thighs.
  void hips() {
    const double hv = b_.hip_v;
    const double h = t_.hip_width / 2 + 0.012;
    const LowerStyle style = t_.lower_style;
    const bool skirt = style == LowerStyle::kSkirt || style == LowerStyle::kLongSkirt;
    const double knee_v = (b_[Joint::kRKnee].v + b_[Joint::kLKnee].v) / 2;
    const double ankle_v = (b_[Joint::kRAnkle].v + b_[Joint::kLAnkle].v) / 2;
    const double bottom_v = style == LowerStyle::kSkirt ? knee_v + 0.02 : ankle_v + 0.05;
    const double flare = style == LowerStyle::kSkirt ? 0.05 : 0.08;
    std::vector<cv::Point2f> poly;
    if (!p_.side()) {
      if (skirt) {
        poly = {at({-h, hv + 0.03, 0}), at({h, hv + 0.03, 0}), at({h + flare, bottom_v, 0}),
                at({-h - flare, bottom_v, 0})};
      } else {
        poly = {at({-h, hv + 0.03, 0}), at({h, hv + 0.03, 0}), at({h * 0.95, hv - 0.075, 0}),
                at({0, hv - 0.08, 0}), at({-h * 0.95, hv - 0.075, 0})};
      }
    } else {
      if (skirt) {
        const double mid_f = (b_[Joint::kRKnee].f + b_[Joint::kLKnee].f) / 2;
        poly = {at({0, hv + 0.03, 0.055}), at({0, hv + 0.03, -0.065}),
                at({0, bottom_v, mid_f - 0.06 - flare}), at({0, bottom_v, mid_f + 0.05 + flare})};
      } else {
        poly = {at({0, hv + 0.03, 0.055}), at({0, hv + 0.03, -0.065}), at({0, hv - 0.07, -0.06}),
                at({0, hv - 0.07, 0.05})};
      }
    }
    c_.polygon(poly);
    c_.paint(lower_fill(1.f));
  }

  void neck() {
    const BodyPoint chin{b_.head_center.a, b_.head_center.v - 0.7 * b_.head_ry, b_.head_center.f};
    c_.segment(at(Joint::kNeck), at(chin), px(0.046));
    c_.paint(Fill::solid(t_.skin, 0.92f));
  }

  void torso() {
    const double sv = b_.shoulder_v, hv = b_.hip_v;
    const double sw = t_.shoulder_width / 2;
    const double chest = t_.gender == 1 ? 0.068 : 0.06;
    struct Level {
      double v, half, front, back;
    };
    const std::array<Level, 4> levels{
        {{sv + 0.012, sw + 0.012, 0.045, 0.05},
         {sv - 0.05, sw + 0.006, chest, 0.055},
         {hv + 0.12, std::max(t_.hip_width / 2, 0.8 * sw) + 0.004, 0.05, 0.048},
         {hv - 0.04, t_.hip_width / 2 + 0.014, 0.055, 0.065}}};
    std::vector<cv::Point2f> poly;
    if (!p_.side()) {
      for (const Level& l : levels) poly.push_back(at(upper({-l.half, l.v, 0})));
      for (auto it = levels.rbegin(); it != levels.rend(); ++it)
        poly.push_back(at(upper({it->half, it->v, 0})));
    } else {
      for (const Level& l : levels) poly.push_back(at(upper({0, l.v, l.front})));
      for (auto it = levels.rbegin(); it != levels.rend(); ++it)
        poly.push_back(at(upper({0, it->v, -it->back})));
    }
    Fill fill = upper_fill(1.f);
    const cv::Point2f center = at(upper({0, (sv + hv) / 2, 0}));
    fill.volume_cx = center.x;
    fill.volume_half = p_.side() ? px(0.065) : px(sw + 0.01);
    c_.polygon(poly);
    c_.paint(fill);

    if (t_.upper_texture == Texture::kLogo && !p_.side()) {
      const bool front = p_.view() == View::kFront;
      // A small chest print in front, a large one on the back: a cue only some views carry.
      const cv::Point2f c =
          front ? at(upper({0.45 * sw, sv - 0.085, 0.06})) : at(upper({0, sv - 0.13, -0.06}));
      const float r = px(front ? 0.026 : 0.05);
      if (t_.upper2[0] & 1) {
        c_.circle(c, r);
      } else {
        const std::array<cv::Point2f, 4> rect{
            c + cv::Point2f(-r, -r * 0.8f), c + cv::Point2f(r, -r * 0.8f),
            c + cv::Point2f(r, r * 0.8f), c + cv::Point2f(-r, r * 0.8f)};
        c_.polygon(rect);
      }
      c_.paint(Fill::solid(t_.upper2));
    }
  }

  void arm(int side, float shade) {
    const LimbJoints& l = kArms[static_cast<std::size_t>(side)];
    const cv::Point2f shoulder = at(l.root), elbow = at(l.mid), wrist = at(l.end);
    const float upper_w = px(thickness(0.052));
    const float fore_w = px(thickness(0.044));
    if (t_.sleeve_length == 0) c_.segment(shoulder, elbow, upper_w * 0.9f);
    if (t_.sleeve_length == 0) c_.segment(elbow, wrist, fore_w * 0.9f);
    c_.circle(wrist, px(0.022));
    c_.paint(Fill::solid(t_.skin, shade));
    if (t_.sleeve_length == 0) {
      c_.segment(shoulder, lerp(shoulder, elbow, 0.5f), upper_w * 1.12f);
    } else {
      c_.segment(shoulder, elbow, upper_w * 1.1f)
          .segment(elbow, lerp(elbow, wrist, 0.86f), fore_w * 1.08f);
    }
    c_.paint(upper_fill(shade * kSleeveShade));
  }

  void backpack_behind() {
    const double sv = b_.shoulder_v, hv = b_.hip_v;
    const std::array<cv::Point2f, 4> pack{
        at(upper({0, sv - 0.01, -0.045})), at(upper({0, sv - 0.025, -0.14})),
        at(upper({0, hv + 0.07, -0.15})), at(upper({0, hv + 0.06, -0.05}))};
    c_.polygon(pack);
    c_.paint(Fill::solid(t_.backpack_color));
    const std::array<cv::Point2f, 4> pocket{
        at(upper({0, hv + 0.17, -0.14})), at(upper({0, hv + 0.17, -0.175})),
        at(upper({0, hv + 0.08, -0.18})), at(upper({0, hv + 0.08, -0.145}))};
    c_.polygon(pocket);
    c_.paint(Fill::solid(t_.backpack_color, 0.8f));
  }

  void backpack_on_back() {
    const double sv = b_.shoulder_v, hv = b_.hip_v;
    const double w = 0.7 * t_.shoulder_width / 2;
    const double top = sv - 0.025, bottom = hv + 0.06, cut = 0.02;
    const std::array<cv::Point2f, 8> pack{
        at(upper({-w + cut, top, -0.08})),    at(upper({w - cut, top, -0.08})),
        at(upper({w, top - cut, -0.08})),     at(upper({w, bottom + cut, -0.08})),
        at(upper({w - cut, bottom, -0.08})),  at(upper({-w + cut, bottom, -0.08})),
        at(upper({-w, bottom + cut, -0.08})), at(upper({-w, top - cut, -0.08}))};
    c_.polygon(pack);
    c_.paint(Fill::solid(t_.backpack_color));
    const double pocket_top = bottom + 0.4 * (top - bottom);
    const std::array<cv::Point2f, 4> pocket{
        at(upper({-0.7 * w, pocket_top, -0.09})), at(upper({0.7 * w, pocket_top, -0.09})),
        at(upper({0.7 * w, bottom + 0.015, -0.09})), at(upper({-0.7 * w, bottom + 0.015, -0.09}))};
    c_.polygon(pocket);
    c_.paint(Fill::solid(t_.backpack_color, 0.78f));
  }

  void backpack_straps() {
    const double sv = b_.shoulder_v, hv = b_.hip_v;
    const float w = std::max(1.f, px(0.02));
    if (p_.side()) {
      c_.segment(at(upper({0, sv + 0.004, -0.01})), at(upper({0, sv - 0.14, 0.055})), w);
    } else {
      const double sw = t_.shoulder_width / 2;
      for (double sign : {-1.0, 1.0}) {
        c_.segment(at(upper({sign * 0.55 * sw, sv + 0.004, 0.02})),
                   at(upper({sign * 0.6 * sw, hv + 0.15, 0.05})), w);
      }
    }
    c_.paint(Fill::solid(t_.backpack_color, 0.85f));
  }

  void bag() {
    const double sv = b_.shoulder_v, hv = b_.hip_v;
    const double sign = t_.bag_side == kRightSide ? -1.0 : 1.0;
    const double ac = sign * (t_.hip_width / 2 + 0.045);
    const double top = hv + 0.06, bottom = hv - 0.06;
    std::array<cv::Point2f, 4> body;
    cv::Point2f strap_from, strap_to;
    if (!p_.side()) {
      body = {at({ac - 0.045, top, 0}), at({ac + 0.045, top, 0}), at({ac + 0.05, bottom, 0}),
              at({ac - 0.05, bottom, 0})};
      strap_from = at(upper({-sign * 0.6 * t_.shoulder_width / 2, sv + 0.005, 0}));
      strap_to = at({ac, top, 0});
    } else {
      body = {at({ac, top, 0.03}), at({ac, top, -0.06}), at({ac, bottom, -0.065}),
              at({ac, bottom, 0.035})};
      strap_from = at(upper({0, sv + 0.004, 0.0}));
      strap_to = at({ac, top, -0.015});
    }
    c_.segment(strap_from, strap_to, std::max(1.f, px(0.012)));
    c_.paint(Fill::solid(t_.bag_color, 0.8f));
    c_.polygon(body);
    c_.paint(Fill::solid(t_.bag_color));
  }

  void long_hair_behind() {
    if (t_.hair_length == 0) return;
    c_.ellipse(head_ + cv::Point2f(0, 1.0f * ry_), {1.18f * rx_, 1.75f * ry_});
    c_.paint(Fill::solid(t_.hair, 0.85f));
  }

  // Seen from behind, long hair covers the lower back of the head and falls past the neck.
  void long_hair_on_back() {
    if (t_.hair_length == 0) return;
    c_.ellipse(head_ + cv::Point2f(0, 0.75f * ry_), {1.02f * rx_, 1.45f * ry_});
    c_.paint(Fill::solid(t_.hair));
  }

  void head() {
    const bool side = p_.side();
    const float d = static_cast<float>(p_.facing());
    const float hx = side ? 1.1f * rx_ : rx_;
    c_.ellipse(head_, {hx, ry_});
    if (side) c_.circle(head_ + cv::Point2f(d * 1.02f * rx_, 0.18f * ry_), 0.22f * rx_);
    c_.paint(Fill::solid(t_.skin));

    if (p_.view() == View::kFront) {
      if (t_.balding) {
        for (float s : {-1.f, 1.f})
          c_.ellipse(head_ + cv::Point2f(s * 0.88f * rx_, -0.1f * ry_), {0.2f * rx_, 0.35f * ry_});
      } else {
        c_.ellipse(head_ + cv::Point2f(0, -0.18f * ry_), {1.07f * rx_, 0.9f * ry_}, 0, 180, 360);
        if (t_.hair_length == 1) {
          for (float s : {-1.f, 1.f})
            c_.segment(head_ + cv::Point2f(s * 0.92f * rx_, -0.3f * ry_),
                       head_ + cv::Point2f(s * 0.98f * rx_, 0.85f * ry_), 0.34f * rx_);
        }
      }
      c_.paint(Fill::solid(t_.hair));
      if (rx_ >= 2.5f) {
        const float r = std::max(0.45f, 0.13f * rx_);
        c_.circle(at(Joint::kREye), r).circle(at(Joint::kLEye), r);
        c_.paint(Fill::solid(scale_brightness(t_.skin, 0.3)));
        c_.segment(head_ + cv::Point2f(-0.22f * rx_, 0.55f * ry_),
                   head_ + cv::Point2f(0.22f * rx_, 0.55f * ry_), std::max(0.6f, 0.1f * rx_));
        c_.paint(Fill::solid(scale_brightness(t_.skin, 0.65)));
      }
    } else if (p_.view() == View::kBack) {
      if (t_.balding) {
        c_.ellipse(head_ + cv::Point2f(0, 0.1f * ry_), {1.04f * rx_, 0.9f * ry_}, 0, 0, 180);
      } else {
        c_.ellipse(head_ + cv::Point2f(0, -0.1f * ry_), {1.06f * rx_, 0.97f * ry_});
      }
      c_.paint(Fill::solid(t_.hair));
    } else {
      if (t_.balding) {
        c_.ellipse(head_ + cv::Point2f(-d * 0.5f * rx_, 0.15f * ry_), {0.6f * rx_, 0.6f * ry_});
      } else {
        c_.ellipse(head_ + cv::Point2f(-d * 0.12f * rx_, -0.2f * ry_), {1.12f * rx_, 0.85f * ry_},
                   0, 180, 360);
        c_.ellipse(head_ + cv::Point2f(-d * 0.45f * rx_, 0.05f * ry_), {0.7f * rx_, 0.85f * ry_});
        if (t_.hair_length == 1) {
          c_.segment(head_ + cv::Point2f(-d * 0.55f * rx_, 0.f),
                     head_ + cv::Point2f(-d * 0.75f * rx_, 2.1f * ry_), rx_);
        }
      }
      c_.paint(Fill::solid(t_.hair));
      if (t_.hair_length == 0 && rx_ >= 2.f) {
        // Short hair leaves the near ear showing on the side of the head.
        const Joint near_ear = far_side() == kRightSide ? Joint::kLEar : Joint::kREar;
        c_.ellipse(at(near_ear), {0.24f * rx_, 0.3f * ry_});
        c_.paint(Fill::solid(t_.skin, 0.82f));
      }
      if (rx_ >= 2.5f) {
        const Joint eye = far_side() == kRightSide ? Joint::kLEye : Joint::kREye;
        c_.circle(at(eye), std::max(0.45f, 0.13f * rx_));
        c_.paint(Fill::solid(scale_brightness(t_.skin, 0.3)));
      }
    }
  }

  // A cap: the brim faces the camera in front views and points forward in side views.
  void hat() {
    if (!t_.hat) return;
    const bool side = p_.side();
    const float d = static_cast<float>(p_.facing());
    const float cap_x = side ? 1.2f * rx_ : 1.12f * rx_;
    const cv::Point2f cap = head_ + cv::Point2f(0, -0.28f * ry_);
    c_.ellipse(cap, {cap_x, 0.8f * ry_}, 0, 180, 360);
    const float brim = std::max(0.8f, 0.18f * ry_);
    if (p_.view() == View::kFront) {
      c_.segment(cap + cv::Point2f(-1.12f * rx_, 0), cap + cv::Point2f(1.12f * rx_, 0), brim);
    } else if (side) {
      c_.segment(cap + cv::Point2f(-d * 0.5f * rx_, 0),
                 cap + cv::Point2f(d * 1.7f * rx_, 0.04f * ry_), brim);
    }
    c_.paint(Fill::solid(t_.hat_color));
  }

  // ---- per-view order, back to front ----
  void paint_front() {
    long_hair_behind();
    for (int side : far_to_near(kLegs)) leg(side, 1.f);
    hips();
    neck();
    torso();
    if (t_.backpack) backpack_straps();
    if (t_.bag) bag();
    for (int side : far_to_near(kArms)) arm(side, 1.f);
    head();
    hat();
  }

  void paint_back() {
    for (int side : far_to_near(kLegs)) leg(side, 1.f);
    hips();
    neck();
    torso();
    if (t_.backpack) backpack_on_back();
    if (t_.bag) bag();
    for (int side : far_to_near(kArms)) arm(side, 1.f);
    head();
    long_hair_on_back();
    hat();
  }

  void paint_side() {
    const int far = far_side();
    const int near = 1 - far;
    const bool bag_near = t_.bag && t_.bag_side == near;
    arm(far, kFarShade);
    leg(far, kFarShade);
    if (t_.bag && !bag_near) bag();
    if (t_.backpack) backpack_behind();
    leg(near, 1.f);
    hips();
    neck();
    torso();
    if (t_.backpack) backpack_straps();
    if (bag_near) bag();
    arm(near, 1.f);
    head();
    hat();
  }

  const IdentityTraits& t_;
  const Body& b_;
  const Projector& p_;
  Canvas& c_;
  float s_;
  cv::Point2f head_;
  float rx_, ry_;
  float split_y_;
};

}  // namespace

void paint_person(const IdentityTraits& traits, const Body& body, const Projector& projector,
                  Canvas& canvas) {
  PersonPainter(traits, body, projector, canvas).paint();
}

}  // namespace ppreid::data::synth
