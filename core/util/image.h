#pragma once

#include <torch/torch.h>

#include <array>
#include <filesystem>
#include <opencv2/core.hpp>

namespace ppreid::util {

// Per-channel normalization constants, in RGB order (the torchvision convention).
using ChannelStats = std::array<float, 3>;

// BGR uint8 image (OpenCV's layout, CV_8UC3) -> float32 tensor [3,H,W] in RGB order with
// (x / 255 - mean) / std per channel. The result owns its memory.
torch::Tensor image_to_tensor(const cv::Mat& bgr_u8, const ChannelStats& mean,
                              const ChannelStats& std);

// Same, written into `out`, which must be a contiguous float32 CPU tensor [3,H,W] matching the
// image (e.g. one row of a preallocated batch), so a loader never copies a sample twice.
void image_to_tensor_into(const cv::Mat& bgr_u8, const ChannelStats& mean, const ChannelStats& std,
                          torch::Tensor& out);

// The inverse of image_to_tensor, for image grids and reports: float tensor [3,H,W] (RGB,
// normalized with mean/std) -> BGR CV_8UC3, rounded and clamped to [0,255]. Accepts any
// dtype/device/layout and tensors that require grad.
cv::Mat tensor_to_image(const torch::Tensor& chw, const ChannelStats& mean,
                        const ChannelStats& std);

// Reads an image as BGR CV_8UC3 (grayscale files are expanded to three channels). Throws
// ppreid::Error naming the path when the file is missing or is not a decodable image.
cv::Mat decode_image(const std::filesystem::path& path);

}  // namespace ppreid::util
