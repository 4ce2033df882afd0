#include "core/data/synth/palette.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <opencv2/imgproc.hpp>
#include <utility>
#include <vector>

#include "core/data/attributes.h"
#include "core/util/error.h"

namespace ppreid::data::synth {
namespace {

struct NamedColor {
  const char* word;
  cv::Vec3b bgr;
};

// Typical garment shades rather than pure primaries: a "red" shirt is seldom (0,0,255).
const std::array<NamedColor, 12> kReferences{{
    {"black", {28, 28, 30}},
    {"white", {235, 235, 232}},
    {"red", {40, 35, 190}},
    {"purple", {120, 45, 110}},
    {"yellow", {40, 205, 225}},
    {"gray", {128, 128, 128}},
    {"grey", {128, 128, 128}},
    {"blue", {160, 80, 35}},
    {"green", {60, 135, 50}},
    {"pink", {185, 150, 235}},
    {"brown", {40, 75, 120}},
    {"orange", {30, 130, 235}},
}};

cv::Vec3f to_lab(const cv::Vec3b& bgr) {
  cv::Mat3f pixel(1, 1, cv::Vec3f(bgr[0] / 255.f, bgr[1] / 255.f, bgr[2] / 255.f));
  cv::Mat3f lab;
  cv::cvtColor(pixel, lab, cv::COLOR_BGR2Lab);
  return lab(0, 0);
}

// Words of the attribute vocabulary that have a reference, with their Lab values; computed once
// because the vocabulary is fixed for the process.
const std::vector<std::pair<std::string, cv::Vec3f>>& vocabulary_lab() {
  static const std::vector<std::pair<std::string, cv::Vec3f>> table = [] {
    std::vector<std::pair<std::string, cv::Vec3f>> out;
    for (const std::string& word : attribute_colors()) {
      if (const cv::Vec3b* ref = reference_color(word)) out.emplace_back(word, to_lab(*ref));
    }
    return out;
  }();
  return table;
}

cv::Vec3b hsv_jitter(const cv::Vec3b& bgr, double value_gain, double saturation_gain,
                     double hue_shift) {
  cv::Mat3b pixel(1, 1, bgr);
  cv::Mat3b hsv;
  cv::cvtColor(pixel, hsv, cv::COLOR_BGR2HSV);
  cv::Vec3b& p = hsv(0, 0);
  p[0] = static_cast<uchar>(
      (static_cast<int>(p[0]) + static_cast<int>(std::lround(hue_shift)) + 180) % 180);
  p[1] = cv::saturate_cast<uchar>(p[1] * saturation_gain);
  p[2] = cv::saturate_cast<uchar>(p[2] * value_gain);
  cv::cvtColor(hsv, pixel, cv::COLOR_HSV2BGR);
  return pixel(0, 0);
}

}  // namespace

const cv::Vec3b* reference_color(const std::string& word) {
  for (const NamedColor& c : kReferences) {
    if (word == c.word) return &c.bgr;
  }
  return nullptr;
}

const std::string& nearest_color_word(const cv::Vec3b& bgr) {
  const auto& vocabulary = vocabulary_lab();
  if (vocabulary.empty())
    throw Error(
        "synthetic generator: none of the attribute colour words (core/data/attributes.h) has a "
        "reference colour in core/data/synth/palette.cpp; add references for the new words");
  const cv::Vec3f lab = to_lab(bgr);
  double best = std::numeric_limits<double>::max();
  const std::string* word = &vocabulary.front().first;
  for (const auto& [name, ref] : vocabulary) {
    double d = cv::norm(lab - ref);
    if (d < best) {
      best = d;
      word = &name;
    }
  }
  return *word;
}

cv::Vec3b sample_clothing_color(util::Rng& rng, bool lower_body) {
  // Weights follow the rough frequencies of Market-1501's colour labels: dark trousers and
  // black/white/gray tops are common, saturated colours less so.
  struct Weighted {
    const char* word;
    double upper, lower;
  };
  static constexpr std::array<Weighted, 11> kWeights{{
      {"black", 3.0, 4.0},
      {"white", 2.5, 0.8},
      {"gray", 2.0, 2.0},
      {"blue", 1.8, 3.0},
      {"red", 1.2, 0.3},
      {"green", 0.9, 0.5},
      {"yellow", 0.6, 0.2},
      {"purple", 0.6, 0.3},
      {"pink", 0.6, 0.4},
      {"brown", 0.5, 1.2},
      {"orange", 0.4, 0.1},
  }};
  std::vector<const Weighted*> usable;
  double total = 0.0;
  const auto& vocabulary = vocabulary_lab();
  for (const Weighted& w : kWeights) {
    bool in_vocabulary = std::any_of(vocabulary.begin(), vocabulary.end(),
                                     [&](const auto& v) { return v.first == w.word; });
    if (!in_vocabulary) continue;
    usable.push_back(&w);
    total += lower_body ? w.lower : w.upper;
  }
  if (usable.empty()) nearest_color_word(cv::Vec3b(0, 0, 0));  // throws the explanatory error
  double pick = rng.uniform(0.0, total);
  const Weighted* chosen = usable.back();
  for (const Weighted* w : usable) {
    pick -= lower_body ? w->lower : w->upper;
    if (pick < 0) {
      chosen = w;
      break;
    }
  }
  const cv::Vec3b base = *reference_color(chosen->word);
  return hsv_jitter(base, rng.uniform(0.8, 1.15), rng.uniform(0.75, 1.15), rng.uniform(-6, 6));
}

cv::Vec3b contrasting_color(const cv::Vec3b& base, util::Rng& rng) {
  const double luma = 0.114 * base[0] + 0.587 * base[1] + 0.299 * base[2];
  // Dark garments get light prints and vice versa; a random hue keeps prints varied.
  cv::Mat3b hsv(
      1, 1,
      cv::Vec3b(
          static_cast<uchar>(rng.uniform_int(0, 179)), static_cast<uchar>(rng.uniform_int(40, 200)),
          static_cast<uchar>(luma < 110 ? rng.uniform_int(180, 250) : rng.uniform_int(20, 90))));
  cv::Mat3b bgr;
  cv::cvtColor(hsv, bgr, cv::COLOR_HSV2BGR);
  return bgr(0, 0);
}

cv::Vec3b sample_skin_tone(util::Rng& rng) {
  static constexpr std::array<std::array<uchar, 3>, 6> kTones{{
      {{189, 214, 246}},
      {{160, 193, 234}},
      {{125, 165, 214}},
      {{95, 135, 190}},
      {{70, 100, 150}},
      {{48, 70, 110}},
  }};
  const auto& t = kTones[static_cast<std::size_t>(rng.uniform_int(0, kTones.size() - 1))];
  return scale_brightness(cv::Vec3b(t[0], t[1], t[2]), rng.uniform(0.93, 1.05));
}

cv::Vec3b sample_hair_color(util::Rng& rng, int age_group) {
  // Old people are mostly grey or white; everybody else draws from natural shades.
  if (age_group == 3 && rng.bernoulli(0.75)) {
    const int v = static_cast<int>(rng.uniform_int(140, 225));
    return cv::Vec3b(static_cast<uchar>(v), static_cast<uchar>(v),
                     static_cast<uchar>(v + 4 > 255 ? 255 : v + 4));
  }
  static constexpr std::array<std::array<uchar, 3>, 6> kShades{{
      {{20, 20, 22}},    // black
      {{25, 35, 50}},    // dark brown
      {{35, 60, 95}},    // brown
      {{90, 150, 200}},  // blonde
      {{30, 60, 140}},   // auburn
      {{55, 55, 60}},    // dark gray
  }};
  static constexpr std::array<double, 6> kWeights{5.0, 3.0, 1.5, 0.8, 0.4, 0.3};
  double pick = rng.uniform(0.0, 11.0);
  std::size_t index = 0;
  for (; index + 1 < kWeights.size(); ++index) {
    pick -= kWeights[index];
    if (pick < 0) break;
  }
  const auto& s = kShades[index];
  return scale_brightness(cv::Vec3b(s[0], s[1], s[2]), rng.uniform(0.85, 1.15));
}

cv::Vec3b scale_brightness(const cv::Vec3b& bgr, double gain) {
  return cv::Vec3b(cv::saturate_cast<uchar>(bgr[0] * gain), cv::saturate_cast<uchar>(bgr[1] * gain),
                   cv::saturate_cast<uchar>(bgr[2] * gain));
}

}  // namespace ppreid::data::synth
