#pragma once

#include <array>
#include <filesystem>
#include <opencv2/core.hpp>

namespace ppreid::util {

// Per-channel normalization constants, in RGB order (the torchvision convention).
using ChannelStats = std::array<float, 3>;

// Reads an image as BGR CV_8UC3 (grayscale files are expanded to three channels). Throws
// ppreid::Error naming the path when the file is missing or is not a decodable image.
cv::Mat decode_image(const std::filesystem::path& path);

}  // namespace ppreid::util
