#include "core/deid/pis/pis_images.h"

#include <opencv2/imgproc.hpp>

#include "core/data/stickman.h"
#include "core/tensor/image_tensor.h"
#include "core/util/image.h"

namespace ppreid::deid::pis {
namespace {

const util::ChannelStats kHalf = {0.5f, 0.5f, 0.5f};

torch::Tensor pad_width(const torch::Tensor& chw, const Geometry& g) {
  if (g.input_width == g.width) return chw;
  const int right = g.input_width - g.width - g.pad_left();
  return torch::constant_pad_nd(chw, {g.pad_left(), right}, 0.0);
}

}  // namespace

torch::Tensor network_image(const cv::Mat& bgr, const Geometry& g) {
  cv::Mat resized = bgr;
  if (bgr.rows != g.height || bgr.cols != g.width)
    cv::resize(bgr, resized, cv::Size(g.width, g.height), 0, 0, cv::INTER_LINEAR);
  return pad_width(tensor::image_to_tensor(resized, kHalf, kHalf), g);
}

torch::Tensor network_stickman(const data::Pose& pose, const Geometry& g) {
  return pad_width(data::stickman_tensor(pose, g.height, g.width), g);
}

cv::Mat output_image(const torch::Tensor& rgb, const Geometry& g, int rows, int cols) {
  torch::Tensor crop = rgb.narrow(2, g.pad_left(), g.width);
  cv::Mat bgr = tensor::tensor_to_image(crop, kHalf, kHalf);
  if (bgr.rows != rows || bgr.cols != cols)
    cv::resize(bgr, bgr, cv::Size(cols, rows), 0, 0, cv::INTER_LINEAR);
  return bgr;
}

torch::Tensor flip_image(const torch::Tensor& nchw) { return nchw.flip({3}); }

torch::Tensor flip_stickman(const torch::Tensor& nchw) {
  torch::Tensor f = nchw.flip({3});
  return torch::cat({f.narrow(1, 1, 1), f.narrow(1, 0, 1), f.narrow(1, 2, 1)}, 1);
}

}  // namespace ppreid::deid::pis
