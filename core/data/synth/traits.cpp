#include "core/data/synth/traits.h"

#include <algorithm>
#include <array>

#include "core/data/synth/palette.h"

namespace ppreid::data::synth {
namespace {

Texture sample_upper_texture(util::Rng& rng) {
  const double p = rng.uniform();
  if (p < 0.45) return Texture::kPlain;
  if (p < 0.62) return Texture::kStripes;
  if (p < 0.74) return Texture::kChecks;
  if (p < 0.88) return Texture::kLogo;
  return Texture::kTwoTone;
}

Texture sample_lower_texture(util::Rng& rng) {
  const double p = rng.uniform();
  if (p < 0.9) return Texture::kPlain;
  if (p < 0.95) return Texture::kStripes;
  return Texture::kChecks;
}

cv::Vec3b sample_shoes(util::Rng& rng) {
  static constexpr std::array<std::array<uchar, 3>, 5> kShoes{
      {{{25, 25, 25}}, {{230, 230, 230}}, {{30, 55, 85}}, {{90, 90, 95}}, {{120, 60, 30}}}};
  const auto& s = kShoes[static_cast<std::size_t>(rng.uniform_int(0, kShoes.size() - 1))];
  return cv::Vec3b(s[0], s[1], s[2]);
}

cv::Vec3b sample_accessory_color(util::Rng& rng) {
  // Bags and backpacks are mostly dark, sometimes loud.
  return rng.bernoulli(0.6) ? scale_brightness(cv::Vec3b(40, 40, 45), rng.uniform(0.6, 1.6))
                            : sample_clothing_color(rng, false);
}

LowerStyle sample_lower_style(util::Rng& rng, int gender, int age_group) {
  const double short_p = age_group <= 1 ? 0.4 : 0.25;
  if (!rng.bernoulli(short_p)) {
    return gender == 1 && rng.bernoulli(0.15) ? LowerStyle::kLongSkirt : LowerStyle::kTrousers;
  }
  return gender == 1 && rng.bernoulli(0.6) ? LowerStyle::kSkirt : LowerStyle::kShorts;
}

// Build follows gender and age, with enough individual spread that build alone does not reveal
// either attribute.
void sample_build(IdentityTraits& t, util::Rng& rng) {
  const bool female = t.gender == 1;
  t.shoulder_width = (female ? 0.205 : 0.245) * rng.uniform(0.9, 1.1);
  t.hip_width = (female ? 0.185 : 0.165) * rng.uniform(0.9, 1.1);
  t.limb_thickness = rng.uniform(0.85, 1.2) * (female ? 0.92 : 1.0);
  switch (t.age_group) {
    case 0:
      t.stature = rng.uniform(0.68, 0.8);
      t.head_scale = rng.uniform(1.2, 1.35);
      break;
    case 1:
      t.stature = rng.uniform(0.85, 0.95);
      t.head_scale = rng.uniform(1.05, 1.12);
      break;
    case 3:
      t.stature = rng.uniform(0.88, 0.98);
      t.head_scale = rng.uniform(0.97, 1.03);
      break;
    default:
      t.stature = rng.uniform(0.92, 1.05) * (female ? 0.96 : 1.0);
      t.head_scale = rng.uniform(0.95, 1.05);
  }
  t.lean = t.age_group == 3 ? rng.uniform(0.05, 0.16) : rng.uniform(-0.02, 0.04);
  t.gait = t.age_group == 3 ? rng.uniform(0.55, 0.8) : rng.uniform(0.85, 1.15);
}

void sample_hair(IdentityTraits& t, util::Rng& rng) {
  t.hair = sample_hair_color(rng, t.age_group);
  t.hair_length = rng.bernoulli(t.gender == 1 ? 0.75 : 0.08) ? 1 : 0;
  t.balding = t.gender == 0 && t.age_group >= 2 && t.hair_length == 0 &&
              rng.bernoulli(t.age_group == 3 ? 0.4 : 0.1);
}

}  // namespace

IdentityTraits sample_traits(util::Rng& rng) {
  IdentityTraits t;
  t.gender = rng.bernoulli(0.45) ? 1 : 0;
  const double age = rng.uniform();
  t.age_group = age < 0.06 ? 0 : age < 0.2 ? 1 : age < 0.9 ? 2 : 3;
  sample_build(t, rng);
  t.skin = sample_skin_tone(rng);
  sample_hair(t, rng);

  t.upper = sample_clothing_color(rng, false);
  t.upper_texture = sample_upper_texture(rng);
  t.upper2 = contrasting_color(t.upper, rng);
  t.sleeve_length = rng.bernoulli(0.55) ? 1 : 0;

  t.lower = sample_clothing_color(rng, true);
  t.lower_texture = sample_lower_texture(rng);
  t.lower2 = contrasting_color(t.lower, rng);
  t.lower_style = sample_lower_style(rng, t.gender, t.age_group);
  t.shoes = sample_shoes(rng);

  t.hat = rng.bernoulli(0.12);
  t.hat_color = sample_accessory_color(rng);
  t.backpack = rng.bernoulli(t.age_group <= 1 ? 0.55 : 0.25);
  t.backpack_color = sample_accessory_color(rng);
  t.bag = rng.bernoulli(t.gender == 1 ? 0.4 : 0.15);
  t.bag_side = static_cast<int>(rng.uniform_int(0, 1));
  t.bag_color = sample_accessory_color(rng);
  return t;
}

IdentityTraits derive_lookalike(const IdentityTraits& source, util::Rng& rng,
                                std::vector<TraitChange>* changes) {
  std::array<TraitChange, 10> pool{TraitChange::kHair,         TraitChange::kBag,
                                   TraitChange::kBackpack,     TraitChange::kHat,
                                   TraitChange::kUpperTexture, TraitChange::kUpperShade,
                                   TraitChange::kLowerColor,   TraitChange::kSleeves,
                                   TraitChange::kShoes,        TraitChange::kBuild};
  std::shuffle(pool.begin(), pool.end(), rng);
  const int count = rng.bernoulli(0.5) ? 1 : 2;
  IdentityTraits t = source;
  if (changes) changes->clear();
  for (int i = 0; i < count; ++i) {
    const TraitChange change = pool[static_cast<std::size_t>(i)];
    if (changes) changes->push_back(change);
    switch (change) {
      case TraitChange::kHair:
        // A visible hair change: flip the length, and pick another shade unless grey.
        t.hair_length = 1 - t.hair_length;
        t.balding = false;
        if (t.age_group != 3) t.hair = sample_hair_color(rng, t.age_group);
        break;
      case TraitChange::kBag:
        t.bag = !t.bag;
        t.bag_color = sample_accessory_color(rng);
        break;
      case TraitChange::kBackpack:
        t.backpack = !t.backpack;
        t.backpack_color = sample_accessory_color(rng);
        break;
      case TraitChange::kHat:
        t.hat = !t.hat;
        t.hat_color = sample_accessory_color(rng);
        break;
      case TraitChange::kUpperTexture: {
        Texture next = t.upper_texture;
        while (next == t.upper_texture) next = sample_upper_texture(rng);
        t.upper_texture = next;
        t.upper2 = contrasting_color(t.upper, rng);
        break;
      }
      case TraitChange::kUpperShade:
        // Same colour word in most cases, but a clearly different shade.
        t.upper = scale_brightness(t.upper, rng.bernoulli(0.5) ? 0.72 : 1.3);
        break;
      case TraitChange::kLowerColor: {
        cv::Vec3b next = t.lower;
        for (int tries = 0; tries < 8 && cv::norm(next, t.lower, cv::NORM_L1) < 90; ++tries)
          next = sample_clothing_color(rng, true);
        if (cv::norm(next, t.lower, cv::NORM_L1) < 90) next = contrasting_color(t.lower, rng);
        t.lower = next;
        break;
      }
      case TraitChange::kSleeves:
        t.sleeve_length = 1 - t.sleeve_length;
        break;
      case TraitChange::kShoes: {
        cv::Vec3b next = t.shoes;
        while (next == t.shoes) next = sample_shoes(rng);
        t.shoes = next;
        break;
      }
      case TraitChange::kBuild:
        t.shoulder_width *= rng.bernoulli(0.5) ? 0.88 : 1.12;
        t.limb_thickness *= rng.bernoulli(0.5) ? 0.85 : 1.18;
        t.stature = std::clamp(t.stature * (rng.bernoulli(0.5) ? 0.93 : 1.07), 0.6, 1.1);
        break;
    }
  }
  return t;
}

Attributes to_attributes(const IdentityTraits& t) {
  Attributes a;
  a.gender = t.gender;
  a.hair_length = t.hair_length;
  a.age_group = t.age_group;
  a.hat = t.hat;
  a.backpack = t.backpack;
  a.bag = t.bag;
  a.sleeve_length = t.sleeve_length;
  a.lower_length =
      t.lower_style == LowerStyle::kTrousers || t.lower_style == LowerStyle::kLongSkirt ? 1 : 0;
  a.upper_color = nearest_color_word(t.upper);
  a.lower_color = nearest_color_word(t.lower);
  return a;
}

}  // namespace ppreid::data::synth
