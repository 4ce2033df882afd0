#include "core/data/transforms.h"

#include <gtest/gtest.h>

#include <functional>
#include <opencv2/imgproc.hpp>
#include <set>
#include <utility>

#include "core/util/error.h"
#include "core/tensor/image_tensor.h"
#include "core/util/image.h"

namespace ppreid::data {
namespace {

cv::Mat random_image(int h, int w, std::uint64_t seed) {
  cv::Mat m(h, w, CV_8UC3);
  cv::RNG rng(seed);
  rng.fill(m, cv::RNG::UNIFORM, 0, 256);
  return m;
}

TransformOptions no_augmentation() {
  TransformOptions o;
  o.flip_prob = 0.0;
  o.pad = 0;
  o.erasing_prob = 0.0;
  return o;
}

cv::Mat resize_to(const cv::Mat& m, const TransformOptions& o) {
  cv::Mat out;
  cv::resize(m, out, cv::Size(o.width, o.height), 0, 0, cv::INTER_LINEAR);
  return out;
}

TEST(Transform, TrainOutputShapeAndRange) {
  TransformOptions o;  // BoT defaults: 128x64, flip 0.5, pad 10, erasing 0.5
  const TrainTransform transform(o);
  const cv::Mat image = random_image(100, 50, 1);
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    util::Rng rng(seed);
    const torch::Tensor t = transform(image, rng);
    ASSERT_EQ(t.sizes(), (std::vector<int64_t>{3, 128, 64}));
    ASSERT_EQ(t.scalar_type(), torch::kFloat32);
    for (int c = 0; c < 3; ++c) {
      // Pixels in [0,1] before normalization; padding is 0 (-> -mean/std); erasing gives 0.
      const float lo = (0.f - o.mean[c]) / o.std[c];
      const float hi = (1.f - o.mean[c]) / o.std[c];
      EXPECT_GE(t[c].min().item<float>(), lo - 1e-5f);
      EXPECT_LE(t[c].max().item<float>(), hi + 1e-5f);
    }
  }
}

TEST(Transform, TestTransformIsResizeThenNormalize) {
  const TransformOptions o;
  const TestTransform transform(o);
  const cv::Mat image = random_image(90, 40, 2);
  const torch::Tensor expected = tensor::image_to_tensor(resize_to(image, o), o.mean, o.std);
  EXPECT_TRUE(torch::equal(transform(image), expected));
  util::Rng rng(123);  // ignored
  EXPECT_TRUE(torch::equal(transform(image, rng), expected));
}

TEST(Transform, FlipProbabilityOneEqualsCvFlip) {
  TransformOptions o = no_augmentation();
  o.flip_prob = 1.0;
  const cv::Mat image = random_image(128, 64, 3);
  cv::Mat flipped;
  cv::flip(image, flipped, 1);
  util::Rng rng(5);
  EXPECT_TRUE(
      torch::equal(TrainTransform(o)(image, rng), tensor::image_to_tensor(flipped, o.mean, o.std)));
}

TEST(Transform, NoAugmentationEqualsTestTransform) {
  const TransformOptions o = no_augmentation();
  const cv::Mat image = random_image(60, 30, 4);
  util::Rng rng(9);
  EXPECT_TRUE(torch::equal(TrainTransform(o)(image, rng), TestTransform(o)(image)));
}

TEST(Transform, PadAndCropIsAShiftWithinPad) {
  TransformOptions o = no_augmentation();
  o.height = 32;
  o.width = 16;
  o.pad = 3;
  const cv::Mat image = random_image(32, 16, 6);
  cv::Mat padded;
  cv::copyMakeBorder(image, padded, o.pad, o.pad, o.pad, o.pad, cv::BORDER_CONSTANT,
                     cv::Scalar::all(0));
  std::set<std::pair<int, int>> offsets_seen;
  for (std::uint64_t seed = 0; seed < 30; ++seed) {
    util::Rng rng(seed);
    const torch::Tensor t = TrainTransform(o)(image, rng);
    int matches = 0;
    for (int y = 0; y <= 2 * o.pad; ++y)
      for (int x = 0; x <= 2 * o.pad; ++x) {
        const cv::Mat crop = padded(cv::Rect(x, y, o.width, o.height));
        if (torch::equal(t, tensor::image_to_tensor(crop, o.mean, o.std))) {
          ++matches;
          offsets_seen.insert({y, x});
        }
      }
    EXPECT_EQ(matches, 1) << "seed " << seed;
  }
  EXPECT_GT(offsets_seen.size(), 5u);  // the crop really is random
}

TEST(Transform, ErasingZeroesOneRectangleWithinAreaBounds) {
  TransformOptions o = no_augmentation();
  o.erasing_prob = 1.0;
  const cv::Mat image = random_image(128, 64, 7);
  const torch::Tensor reference = TestTransform(o)(image);
  const double total = 128.0 * 64.0;
  int erased = 0;
  for (std::uint64_t seed = 0; seed < 40; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    util::Rng rng(seed);
    const torch::Tensor t = TrainTransform(o)(image, rng);
    const torch::Tensor changed = (t != reference).any(0);  // [H,W]
    const int64_t count = changed.sum().item<int64_t>();
    if (count == 0) continue;  // all ten attempts missed: allowed, but rare
    ++erased;
    const torch::Tensor rows = changed.any(1).nonzero();
    const torch::Tensor cols = changed.any(0).nonzero();
    const int64_t top = rows.min().item<int64_t>(), bottom = rows.max().item<int64_t>();
    const int64_t left = cols.min().item<int64_t>(), right = cols.max().item<int64_t>();
    const int64_t h = bottom - top + 1, w = right - left + 1;
    EXPECT_EQ(count, h * w) << "the erased region is not a rectangle";
    const torch::Tensor box = t.slice(1, top, bottom + 1).slice(2, left, right + 1);
    EXPECT_EQ(box.abs().max().item<float>(), 0.f) << "erased pixels must be the mean (0)";
    // h and w are rounded, so the area may miss the bounds by up to half a pixel per side.
    EXPECT_GE((h + 0.5) * (w + 0.5), o.erasing_area_min * total);
    EXPECT_LE((h - 0.5) * (w - 0.5), o.erasing_area_max * total);
  }
  EXPECT_GE(erased, 35);
}

TEST(Transform, EraseBoxHandComputed) {
  // Area fixed to a quarter and aspect 1: h = w = round(sqrt(0.25 * 128 * 64)) = round(45.25).
  TransformOptions o = no_augmentation();
  o.erasing_prob = 1.0;
  o.erasing_area_min = o.erasing_area_max = 0.25;
  o.erasing_aspect_min = 1.0;
  for (std::uint64_t seed = 0; seed < 10; ++seed) {
    util::Rng rng(seed);
    const auto box = draw_erase_box(o, rng);
    ASSERT_TRUE(box.has_value());
    EXPECT_EQ(box->height, 45);
    EXPECT_EQ(box->width, 45);
    EXPECT_GE(box->top, 0);
    EXPECT_LE(box->top, 128 - 45);
    EXPECT_GE(box->left, 0);
    EXPECT_LE(box->left, 64 - 45);
  }
  // A box that can never fit (the whole image): every attempt fails, nothing is erased.
  o.erasing_area_min = o.erasing_area_max = 1.0;
  util::Rng rng(1);
  EXPECT_FALSE(draw_erase_box(o, rng).has_value());
  o.erasing_prob = 0.0;
  o.erasing_area_min = 0.02;
  EXPECT_FALSE(draw_erase_box(o, rng).has_value());
}

TEST(Transform, SameSeedSameTensorDifferentSeedDifferent) {
  TransformOptions o;
  o.flip_prob = 0.5;
  o.erasing_prob = 1.0;
  const TrainTransform transform(o);
  const cv::Mat image = random_image(140, 70, 8);
  util::Rng a(42), b(42), c(43);
  const torch::Tensor ta = transform(image, a);
  EXPECT_TRUE(torch::equal(ta, transform(image, b)));
  EXPECT_FALSE(torch::equal(ta, transform(image, c)));
}

TEST(Transform, RejectsBadOptions) {
  struct Case {
    const char* field;
    std::function<void(TransformOptions&)> mutate;
  };
  const Case cases[] = {
      {"height", [](TransformOptions& o) { o.height = 0; }},
      {"width", [](TransformOptions& o) { o.width = -4; }},
      {"pad", [](TransformOptions& o) { o.pad = -1; }},
      {"flip_prob", [](TransformOptions& o) { o.flip_prob = 1.5; }},
      {"erasing_prob", [](TransformOptions& o) { o.erasing_prob = -0.1; }},
      {"erasing_area_min", [](TransformOptions& o) { o.erasing_area_min = 0.5; }},
      {"erasing_area_max", [](TransformOptions& o) { o.erasing_area_max = 2.0; }},
      {"erasing_aspect_min", [](TransformOptions& o) { o.erasing_aspect_min = 0.0; }},
      {"erasing_aspect_min", [](TransformOptions& o) { o.erasing_aspect_min = 3.0; }},
      {"std", [](TransformOptions& o) { o.std[1] = 0.f; }},
      {"std", [](TransformOptions& o) { o.std[2] = -0.2f; }},
  };
  for (const auto& c : cases) {
    TransformOptions o;
    c.mutate(o);
    try {
      TrainTransform transform(o);
      ADD_FAILURE() << "accepted a bad " << c.field;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("transform.") + c.field), std::string::npos)
          << e.what();
    }
  }
  EXPECT_NO_THROW(validate(TransformOptions{}));
}

TEST(Transform, RejectsNonBgrImage) {
  const TestTransform transform(TransformOptions{});
  EXPECT_THROW(transform(cv::Mat()), Error);
  EXPECT_THROW(transform(cv::Mat(10, 10, CV_8UC1, cv::Scalar(0))), Error);
}

}  // namespace
}  // namespace ppreid::data
