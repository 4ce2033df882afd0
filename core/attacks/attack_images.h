#pragma once

// The attacker's pixel space, shared by `ppreid attack` and the simulator's replay: images are
// RGB tensors [1,3,H,W] with values in [0, 1], as in both reference implementations.

#include <torch/torch.h>

#include <opencv2/core.hpp>

#include <filesystem>
#include <vector>

namespace ppreid::attacks {

// Reads an image file (ppreid::Error naming it when unreadable) and resizes it to height x width
// with area interpolation.
torch::Tensor load_attack_image(const std::filesystem::path& path, int height, int width);

// [1,3,H,W] or [3,H,W] in [0, 1] (clamped) -> 8-bit BGR, for SSIM and PNGs.
cv::Mat to_bgr8(const torch::Tensor& image);

// Writes the tiles side by side, each scaled 4x with nearest-neighbour, as one PNG (atomically).
// All tiles must have the same size.
void write_strip(const std::filesystem::path& file, const std::vector<torch::Tensor>& tiles);

}  // namespace ppreid::attacks
