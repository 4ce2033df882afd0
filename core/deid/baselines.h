#pragma once

#include "core/deid/body_regions.h"
#include "core/deid/deidentifier.h"

namespace ppreid::deid {

// The papers' classic comparison points. All keep the image size and type.

// No change: the utility upper bound and privacy lower bound of every table.
class Identity final : public Deidentifier {
 public:
  std::string name() const override { return "none"; }
  nlohmann::json parameters() const override { return nlohmann::json::object(); }
  cv::Mat apply(const cv::Mat& bgr, const ImageContext&) const override;
};

// Gaussian blur with a kernel of kernel_h rows x kernel_w columns (odd); sigma from the size as
// OpenCV does. The papers' settings: "S" 11x5, "L" 21x11, and 25x25.
class GaussianBlur final : public Deidentifier {
 public:
  GaussianBlur(int kernel_h, int kernel_w);
  std::string name() const override { return "blur"; }
  nlohmann::json parameters() const override;
  cv::Mat apply(const cv::Mat& bgr, const ImageContext&) const override;

 private:
  int kernel_h_, kernel_w_;
};

// Block-mean pixelization with square blocks of `block` pixels (no noise).
class Pixelate final : public Deidentifier {
 public:
  explicit Pixelate(int block);
  std::string name() const override { return "pixelate"; }
  nlohmann::json parameters() const override { return {{"block", block_}}; }
  cv::Mat apply(const cv::Mat& bgr, const ImageContext&) const override;

 private:
  int block_;
};

// Colour quantization alone: drop `color_bits` low bits per channel, render at bin centres.
class Quantize final : public Deidentifier {
 public:
  explicit Quantize(int color_bits);
  std::string name() const override { return "quantize"; }
  nlohmann::json parameters() const override { return {{"color_bits", color_bits_}}; }
  cv::Mat apply(const cv::Mat& bgr, const ImageContext&) const override;

 private:
  int color_bits_;
};

// Fills the head or body box with the image's mean colour (no hard black edge to learn from).
class RemoveRegion final : public Deidentifier {
 public:
  explicit RemoveRegion(BodyRegion region) : region_(region) {}
  std::string name() const override {
    return region_ == BodyRegion::kHead ? "remove-head" : "remove-body";
  }
  nlohmann::json parameters() const override;
  cv::Mat apply(const cv::Mat& bgr, const ImageContext& ctx) const override;

 private:
  BodyRegion region_;
};

}  // namespace ppreid::deid
