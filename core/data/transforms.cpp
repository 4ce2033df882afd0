#include "core/data/transforms.h"

#include <cmath>
#include <opencv2/imgproc.hpp>
#include <string>

#include "core/util/error.h"
#include "core/tensor/image_tensor.h"
#include "core/util/image.h"

namespace ppreid::data {
namespace {

[[noreturn]] void bad(const std::string& field, const std::string& message) {
  throw Error("transform." + field + ": " + message + "; fix it in the transform section");
}

void check_probability(const std::string& field, double p) {
  if (!(p >= 0.0 && p <= 1.0))
    bad(field, "must be a probability in [0,1], got " + std::to_string(p));
}

}  // namespace

void validate(const TransformOptions& o) {
  if (o.height <= 0) bad("height", "must be > 0, got " + std::to_string(o.height));
  if (o.width <= 0) bad("width", "must be > 0, got " + std::to_string(o.width));
  if (o.pad < 0) bad("pad", "must be >= 0, got " + std::to_string(o.pad));
  check_probability("flip_prob", o.flip_prob);
  check_probability("erasing_prob", o.erasing_prob);
  check_probability("erasing_area_min", o.erasing_area_min);
  check_probability("erasing_area_max", o.erasing_area_max);
  if (o.erasing_area_min > o.erasing_area_max)
    bad("erasing_area_min", "must be <= erasing_area_max (" + std::to_string(o.erasing_area_min) +
                                " > " + std::to_string(o.erasing_area_max) + ")");
  if (!(o.erasing_aspect_min > 0.0 && o.erasing_aspect_min <= 1.0))
    bad("erasing_aspect_min", "must be in (0,1] (aspect ratios are drawn in [min, 1/min]), got " +
                                  std::to_string(o.erasing_aspect_min));
  for (int c = 0; c < 3; ++c) {
    if (!(o.std[c] > 0.f) || !std::isfinite(o.std[c]))
      bad("std", "every channel must be > 0, channel " + std::to_string(c) + " is " +
                     std::to_string(o.std[c]));
    if (!std::isfinite(o.mean[c]))
      bad("mean", "channel " + std::to_string(c) + " is not a finite number");
  }
}

Transform::Transform(TransformOptions options) : options_(options) { validate(options_); }

torch::Tensor Transform::operator()(const cv::Mat& bgr, util::Rng& rng) const {
  torch::Tensor out = torch::empty({3, options_.height, options_.width}, torch::kFloat32);
  apply(bgr, rng, out);
  return out;
}

cv::Mat Transform::resized(const cv::Mat& bgr) const {
  if (bgr.empty() || bgr.type() != CV_8UC3)
    throw Error("transform: expected a non-empty 8-bit BGR image (CV_8UC3), got " +
                std::to_string(bgr.rows) + "x" + std::to_string(bgr.cols) + " with " +
                std::to_string(bgr.channels()) + " channel(s); decode with util::decode_image");
  if (bgr.rows == options_.height && bgr.cols == options_.width) return bgr;
  cv::Mat out;
  cv::resize(bgr, out, cv::Size(options_.width, options_.height), 0, 0, cv::INTER_LINEAR);
  return out;
}

std::optional<EraseBox> draw_erase_box(const TransformOptions& o, util::Rng& rng) {
  // torchvision.transforms.RandomErasing.get_params, draw for draw.
  if (!(rng.uniform() < o.erasing_prob)) return std::nullopt;
  const double area = static_cast<double>(o.height) * o.width;
  const double log_lo = std::log(o.erasing_aspect_min);
  const double log_hi = -log_lo;
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double erase_area = area * rng.uniform(o.erasing_area_min, o.erasing_area_max);
    const double aspect = std::exp(rng.uniform(log_lo, log_hi));
    const int h = static_cast<int>(std::lround(std::sqrt(erase_area * aspect)));
    const int w = static_cast<int>(std::lround(std::sqrt(erase_area / aspect)));
    if (!(h < o.height && w < o.width)) continue;
    EraseBox box;
    box.height = h;
    box.width = w;
    box.top = static_cast<int>(rng.uniform_int(0, o.height - h));
    box.left = static_cast<int>(rng.uniform_int(0, o.width - w));
    return box;
  }
  return std::nullopt;
}

void TrainTransform::apply(const cv::Mat& bgr, util::Rng& rng, torch::Tensor& out) const {
  const int h = options_.height;
  const int w = options_.width;
  cv::Mat image = resized(bgr);

  if (rng.uniform() < options_.flip_prob) {
    cv::Mat flipped;
    cv::flip(image, flipped, 1);
    image = flipped;
  }

  if (options_.pad > 0) {
    // Pad(pad) + RandomCrop(h, w) without materializing the padded image: the crop's origin in
    // padded coordinates is (dy, dx) in [0, 2*pad]; copy the overlap into a zero canvas.
    const int dy = static_cast<int>(rng.uniform_int(0, 2 * options_.pad)) - options_.pad;
    const int dx = static_cast<int>(rng.uniform_int(0, 2 * options_.pad)) - options_.pad;
    if (dy != 0 || dx != 0) {
      cv::Mat canvas = cv::Mat::zeros(h, w, image.type());
      const cv::Rect src_rect = cv::Rect(dx, dy, w, h) & cv::Rect(0, 0, w, h);
      if (src_rect.area() > 0) {
        const cv::Rect dst_rect(src_rect.x - dx, src_rect.y - dy, src_rect.width, src_rect.height);
        image(src_rect).copyTo(canvas(dst_rect));
      }
      image = canvas;
    }
  }

  tensor::image_to_tensor_into(image, options_.mean, options_.std, out);

  if (const auto box = draw_erase_box(options_, rng)) {
    out.slice(1, box->top, box->top + box->height)
        .slice(2, box->left, box->left + box->width)
        .zero_();
  }
}

void TestTransform::apply(const cv::Mat& bgr, util::Rng& /*rng*/, torch::Tensor& out) const {
  tensor::image_to_tensor_into(resized(bgr), options_.mean, options_.std, out);
}

torch::Tensor TestTransform::operator()(const cv::Mat& bgr) const {
  util::Rng unused(0);
  return Transform::operator()(bgr, unused);
}

}  // namespace ppreid::data
