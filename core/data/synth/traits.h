#pragma once

#include <opencv2/core.hpp>
#include <vector>

#include "core/data/attributes.h"
#include "core/util/rng.h"

namespace ppreid::data::synth {

// Garment surface patterns. kLogo is a plain garment with a contrasting print on the chest (front)
// or a larger one on the back; kTwoTone has a yoke of the second colour over the shoulders.
enum class Texture { kPlain, kStripes, kChecks, kLogo, kTwoTone };

enum class LowerStyle { kTrousers, kShorts, kSkirt, kLongSkirt };

// Everything about a person that stays the same in every image of that identity. Proportions are
// in units of body height so the painter can draw at any scale.
struct IdentityTraits {
  int gender = 0;     // 0 male, 1 female (Attributes coding)
  int age_group = 2;  // 0 young, 1 teenager, 2 adult, 3 old

  double stature = 1.0;          // relative height: taller people fill more of the detection box
  double shoulder_width = 0.24;  // full width, body heights
  double hip_width = 0.17;
  double head_scale = 1.0;      // children have relatively larger heads
  double limb_thickness = 1.0;  // slim .. stocky
  double lean = 0.0;            // forward bend of the upper body (radians), old people stoop
  double gait = 1.0;            // walking swing amplitude factor

  cv::Vec3b skin;
  cv::Vec3b hair;
  int hair_length = 0;  // 0 short, 1 long
  bool balding = false;

  cv::Vec3b upper;
  cv::Vec3b upper2;  // stripes, checks, logo, yoke
  Texture upper_texture = Texture::kPlain;
  int sleeve_length = 1;  // 0 short, 1 long

  cv::Vec3b lower;
  cv::Vec3b lower2;
  Texture lower_texture = Texture::kPlain;
  LowerStyle lower_style = LowerStyle::kTrousers;

  cv::Vec3b shoes;

  bool hat = false;
  cv::Vec3b hat_color;
  bool backpack = false;
  cv::Vec3b backpack_color;
  bool bag = false;
  int bag_side = 0;  // 0 the person's right, 1 left
  cv::Vec3b bag_color;
};

IdentityTraits sample_traits(util::Rng& rng);

// The traits a look-alike can differ in from its source identity.
enum class TraitChange {
  kHair,
  kBag,
  kBackpack,
  kHat,
  kUpperTexture,
  kUpperShade,
  kLowerColor,
  kSleeves,
  kShoes,
  kBuild
};

// A different person who shares most of `source`'s appearance: 1 or 2 traits are changed (and
// each change is guaranteed to be visible), so identities cannot be told apart by any one colour.
// `changes`, when given, receives what was changed.
IdentityTraits derive_lookalike(const IdentityTraits& source, util::Rng& rng,
                                std::vector<TraitChange>* changes = nullptr);

// The Market-1501-style annotation of an identity; colours are named from attribute_colors().
Attributes to_attributes(const IdentityTraits& traits);

}  // namespace ppreid::data::synth
