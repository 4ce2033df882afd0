#include "core/deid/baselines.h"

#include <opencv2/imgproc.hpp>

#include <cmath>

#include "core/util/error.h"

namespace ppreid::deid {
namespace {

void require_bgr(const cv::Mat& bgr, const std::string& method) {
  if (bgr.empty() || bgr.type() != CV_8UC3)
    throw Error(method + " needs an 8-bit 3-channel image");
}

}  // namespace

cv::Mat Identity::apply(const cv::Mat& bgr, const ImageContext&) const {
  require_bgr(bgr, "none");
  return bgr.clone();
}

GaussianBlur::GaussianBlur(int kernel_h, int kernel_w) : kernel_h_(kernel_h), kernel_w_(kernel_w) {
  if (kernel_h < 1 || kernel_w < 1 || kernel_h % 2 == 0 || kernel_w % 2 == 0)
    throw UsageError("--kernel: blur kernels must be odd and positive (got " +
                     std::to_string(kernel_h) + "x" + std::to_string(kernel_w) + ")");
}

nlohmann::json GaussianBlur::parameters() const {
  return {{"kernel_h", kernel_h_}, {"kernel_w", kernel_w_}, {"sigma", "from kernel size"}};
}

cv::Mat GaussianBlur::apply(const cv::Mat& bgr, const ImageContext&) const {
  require_bgr(bgr, "blur");
  cv::Mat out;
  cv::GaussianBlur(bgr, out, cv::Size(kernel_w_, kernel_h_), 0, 0, cv::BORDER_REFLECT_101);
  return out;
}

Pixelate::Pixelate(int block) : block_(block) {
  if (block < 1 || block > 256)
    throw UsageError("--block must be in [1, 256] (got " + std::to_string(block) + ")");
}

cv::Mat Pixelate::apply(const cv::Mat& bgr, const ImageContext&) const {
  require_bgr(bgr, "pixelate");
  cv::Mat out(bgr.size(), bgr.type());
  for (int y = 0; y < bgr.rows; y += block_) {
    for (int x = 0; x < bgr.cols; x += block_) {
      cv::Rect cell = cv::Rect(x, y, block_, block_) & cv::Rect(0, 0, bgr.cols, bgr.rows);
      cv::Scalar mean = cv::mean(bgr(cell));
      out(cell).setTo(cv::Scalar(std::round(mean[0]), std::round(mean[1]), std::round(mean[2])));
    }
  }
  return out;
}

Quantize::Quantize(int color_bits) : color_bits_(color_bits) {
  if (color_bits < 0 || color_bits > 7)
    throw UsageError("--color-bits must be in [0, 7] (got " + std::to_string(color_bits) + ")");
}

cv::Mat Quantize::apply(const cv::Mat& bgr, const ImageContext&) const {
  require_bgr(bgr, "quantize");
  const int c = color_bits_;
  const int half = c > 0 ? 1 << (c - 1) : 0;
  cv::Mat lut(1, 256, CV_8U);
  for (int v = 0; v < 256; ++v) lut.at<std::uint8_t>(v) = static_cast<std::uint8_t>(((v >> c) << c) | half);
  cv::Mat out;
  cv::LUT(bgr, lut, out);
  return out;
}

nlohmann::json RemoveRegion::parameters() const {
  return {{"region", region_ == BodyRegion::kHead ? "head" : "body"},
          {"fill", "image mean colour"},
          {"box", "from keypoints when available, else the fixed pedestrian-crop box"}};
}

cv::Mat RemoveRegion::apply(const cv::Mat& bgr, const ImageContext& ctx) const {
  require_bgr(bgr, name());
  cv::Mat out = bgr.clone();
  cv::Rect box = region_box(region_, ctx.pose, bgr.size());
  if (box.area() > 0) out(box).setTo(cv::mean(bgr));
  return out;
}

}  // namespace ppreid::deid
