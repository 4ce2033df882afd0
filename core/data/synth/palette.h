#pragma once

#include <opencv2/core.hpp>
#include <string>

#include "core/util/rng.h"

namespace ppreid::data::synth {

// Reference BGR value of a colour word, or nullptr when the word is not one the generator knows
// (the attribute vocabulary is owned by core/data/attributes.h and may grow independently).
const cv::Vec3b* reference_color(const std::string& word);

// The word of attribute_colors() whose reference colour is nearest to `bgr` in CIE Lab, which
// follows how people name colours better than RGB distance does. Throws ppreid::Error when no
// word of the vocabulary has a reference colour.
const std::string& nearest_color_word(const cv::Vec3b& bgr);

// Clothing colour: a word drawn with everyday frequencies (dark and neutral clothes dominate,
// as in Market-1501) from the vocabulary, then jittered in brightness and saturation so two
// "blue" identities are rarely the same blue.
cv::Vec3b sample_clothing_color(util::Rng& rng, bool lower_body);

// A colour that stands out against `base` (stripes, prints, logos).
cv::Vec3b contrasting_color(const cv::Vec3b& base, util::Rng& rng);

cv::Vec3b sample_skin_tone(util::Rng& rng);
cv::Vec3b sample_hair_color(util::Rng& rng, int age_group);

// Multiplies brightness (value) by `gain`, saturating; used for shading and for look-alike tweaks.
cv::Vec3b scale_brightness(const cv::Vec3b& bgr, double gain);

}  // namespace ppreid::data::synth
