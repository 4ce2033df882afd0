#pragma once

// Image <-> tensor conversion: the one place where OpenCV's BGR uint8 layout meets LibTorch's
// normalized float [3,H,W]. Kept out of core/util so that util stays free of LibTorch.

#include <ATen/core/Tensor.h>

#include <opencv2/core.hpp>

#include "core/util/image.h"

namespace ppreid::tensor {

using util::ChannelStats;

// BGR uint8 image (OpenCV's layout, CV_8UC3) -> float32 tensor [3,H,W] in RGB order with
// (x / 255 - mean) / std per channel. The result owns its memory.
at::Tensor image_to_tensor(const cv::Mat& bgr_u8, const ChannelStats& mean,
                              const ChannelStats& std);

// Same, written into `out`, which must be a contiguous float32 CPU tensor [3,H,W] matching the
// image (e.g. one row of a preallocated batch), so a loader never copies a sample twice.
void image_to_tensor_into(const cv::Mat& bgr_u8, const ChannelStats& mean, const ChannelStats& std,
                          at::Tensor& out);

// The inverse of image_to_tensor, for image grids and reports: float tensor [3,H,W] (RGB,
// normalized with mean/std) -> BGR CV_8UC3, rounded and clamped to [0,255]. Accepts any
// dtype/device/layout and tensors that require grad.
cv::Mat tensor_to_image(const at::Tensor& chw, const ChannelStats& mean,
                        const ChannelStats& std);

}  // namespace ppreid::tensor
