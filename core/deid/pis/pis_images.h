#pragma once

#include <torch/torch.h>

#include <opencv2/core.hpp>

#include "core/data/keypoints.h"

namespace ppreid::deid::pis {

// How crops enter and leave the network. The crop is resized to height x width (the profile's
// image size) and, when the network input is wider (pad_square), padded symmetrically left and
// right with mid-gray (0 in [-1, 1]) and, for the stickman, with nothing drawn.
struct Geometry {
  int height = 64;       // resized crop
  int width = 32;
  int input_width = 32;  // network input width (>= width)
  int pad_left() const { return (input_width - width) / 2; }
};

// BGR uint8 crop of any size -> RGB float [3,height,input_width] in [-1, 1].
torch::Tensor network_image(const cv::Mat& bgr, const Geometry& g);
// The pose's stickman at the crop size, padded like the image: float [3,height,input_width] in
// [0, 1] (channels as data::render_stickman).
torch::Tensor network_stickman(const data::Pose& pose, const Geometry& g);
// Inverse of network_image: crops the padding, converts to BGR uint8 and resizes to rows x cols
// (the original crop size) with bilinear interpolation.
cv::Mat output_image(const torch::Tensor& rgb, const Geometry& g, int rows, int cols);
// Mirror images: the image and stickman are flipped left-right and the stickman's right/left
// channels (0 and 1) swap, so the mirrored pose stays anatomically labelled.
torch::Tensor flip_image(const torch::Tensor& nchw);
torch::Tensor flip_stickman(const torch::Tensor& nchw);

}  // namespace ppreid::deid::pis
