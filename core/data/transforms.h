#pragma once

#include <torch/torch.h>

#include <opencv2/core.hpp>
#include <optional>

#include "core/data/loader_options.h"
#include "core/util/rng.h"

namespace ppreid::data {

// Throws ppreid::Error naming the offending field (transform.<name>) when the options cannot
// describe a valid transform: non-positive size, probability outside [0,1], negative padding,
// an empty or inverted erasing range, aspect_min outside (0,1], or a std that is not > 0.
void validate(const TransformOptions& options);

// An image -> tensor transform: BGR CV_8UC3 of any size in, float32 [3,height,width] out
// (RGB, normalized). All randomness comes from the Rng passed in, so what happens to a sample
// depends only on the seed it was given, never on which thread runs it.
class Transform {
 public:
  explicit Transform(TransformOptions options);
  virtual ~Transform() = default;

  // Writes into `out`, a contiguous float32 CPU tensor [3,height,width] (e.g. batch[i]).
  virtual void apply(const cv::Mat& bgr, util::Rng& rng, torch::Tensor& out) const = 0;
  torch::Tensor operator()(const cv::Mat& bgr, util::Rng& rng) const;

  const TransformOptions& options() const { return options_; }
  int height() const { return options_.height; }
  int width() const { return options_.width; }

 protected:
  // Resize to height x width with bilinear interpolation (a no-op when already that size).
  cv::Mat resized(const cv::Mat& bgr) const;

  TransformOptions options_;
};

// The BoT training recipe: resize, horizontal flip (flip_prob), zero-pad by `pad` and crop a
// random height x width window, normalize, then random erasing (torchvision RandomErasing with
// value 0 after normalization, i.e. the mean colour). Random draws happen in that order.
class TrainTransform : public Transform {
 public:
  explicit TrainTransform(TransformOptions options) : Transform(options) {}
  void apply(const cv::Mat& bgr, util::Rng& rng, torch::Tensor& out) const override;
};

// Evaluation: resize and normalize only; the Rng is ignored.
class TestTransform : public Transform {
 public:
  explicit TestTransform(TransformOptions options) : Transform(options) {}
  void apply(const cv::Mat& bgr, util::Rng& rng, torch::Tensor& out) const override;
  torch::Tensor operator()(const cv::Mat& bgr) const;
  using Transform::operator();
};

// The rectangle RandomErasing would clear in a [3,height,width] tensor, or nullopt when the
// erasing is skipped (probability) or all 10 attempts produced a box that does not fit.
struct EraseBox {
  int top = 0;
  int left = 0;
  int height = 0;
  int width = 0;
};
std::optional<EraseBox> draw_erase_box(const TransformOptions& options, util::Rng& rng);

}  // namespace ppreid::data
