#include "core/attacks/attack_images.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <string>

#include "core/util/atomic_file.h"
#include "core/util/error.h"
#include "core/util/image.h"

namespace ppreid::attacks {

torch::Tensor load_attack_image(const std::filesystem::path& path, int height, int width) {
  if (height < 1 || width < 1)
    throw Error("attack image size must be positive (got " + std::to_string(height) + "x" +
                std::to_string(width) + ")");
  cv::Mat bgr = util::decode_image(path.string());
  cv::Mat resized;
  cv::resize(bgr, resized, cv::Size(width, height), 0, 0, cv::INTER_AREA);
  cv::cvtColor(resized, resized, cv::COLOR_BGR2RGB);
  torch::Tensor t = torch::from_blob(resized.data, {height, width, 3}, torch::kUInt8).clone();
  return t.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat32) / 255.0;
}

cv::Mat to_bgr8(const torch::Tensor& image) {
  torch::Tensor t = image.detach().to(torch::kCPU);
  if (t.dim() == 4) t = t.squeeze(0);
  if (t.dim() != 3 || t.size(0) != 3)
    throw Error("attack image must be [1,3,H,W] or [3,H,W]");
  t = (t.clamp(0, 1) * 255.0).round().to(torch::kUInt8).permute({1, 2, 0}).contiguous();
  cv::Mat rgb(static_cast<int>(t.size(0)), static_cast<int>(t.size(1)), CV_8UC3, t.data_ptr());
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);  // copies out of the tensor's memory
  return bgr;
}

void write_strip(const std::filesystem::path& file, const std::vector<torch::Tensor>& tiles) {
  if (tiles.empty()) throw Error("attack strip " + file.string() + ": no images");
  std::vector<cv::Mat> big;
  for (const auto& t : tiles) {
    cv::Mat m;
    cv::resize(to_bgr8(t), m, cv::Size(), 4, 4, cv::INTER_NEAREST);
    if (!big.empty() && m.size() != big.front().size())
      throw Error("attack strip " + file.string() + ": images of different sizes");
    big.push_back(m);
  }
  cv::Mat strip;
  cv::hconcat(big, strip);
  std::vector<unsigned char> bytes;
  if (!cv::imencode(".png", strip, bytes)) throw Error("cannot encode the strip " + file.string());
  util::write_file_atomic(file, std::string(bytes.begin(), bytes.end()));
}

}  // namespace ppreid::attacks
