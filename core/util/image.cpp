#include "core/util/image.h"

#include <opencv2/imgcodecs.hpp>

#include "core/util/error.h"

namespace ppreid::util {

cv::Mat decode_image(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw Error("image '" + path.string() +
                "' does not exist or is not a file; check the dataset root and split folders");
  cv::Mat image = cv::imread(path.string(), cv::IMREAD_COLOR);
  if (image.empty())
    throw Error("cannot decode image '" + path.string() +
                "': the file is corrupt or not in a format OpenCV reads (JPEG, PNG, ...); "
                "re-export it or remove it from the dataset");
  return image;
}

}  // namespace ppreid::util
