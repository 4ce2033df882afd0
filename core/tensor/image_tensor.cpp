#include "core/tensor/image_tensor.h"

#include <torch/torch.h>

#include <opencv2/imgproc.hpp>
#include <string>
#include <vector>

#include "core/util/error.h"

namespace ppreid::tensor {
namespace {

std::string shape_text(const cv::Mat& m) {
  return std::to_string(m.rows) + "x" + std::to_string(m.cols) + " with " +
         std::to_string(m.channels()) + " channel(s), depth " + std::to_string(m.depth());
}

void check_stats(const ChannelStats& std, const char* where) {
  for (float s : std)
    if (!(s > 0.f))
      throw Error(std::string(where) + ": every normalization std must be > 0 (got " +
                  std::to_string(s) + "); fix transform.std in the config");
}

}  // namespace

void image_to_tensor_into(const cv::Mat& bgr_u8, const ChannelStats& mean, const ChannelStats& std,
                          torch::Tensor& out) {
  if (bgr_u8.empty() || bgr_u8.type() != CV_8UC3)
    throw Error("image_to_tensor: expected a non-empty 8-bit BGR image (CV_8UC3), got " +
                shape_text(bgr_u8) + "; decode with util::decode_image");
  check_stats(std, "image_to_tensor");
  const int h = bgr_u8.rows;
  const int w = bgr_u8.cols;
  if (!out.defined() || out.scalar_type() != torch::kFloat32 || !out.device().is_cpu() ||
      !out.is_contiguous() || out.dim() != 3 || out.size(0) != 3 || out.size(1) != h ||
      out.size(2) != w)
    throw Error("image_to_tensor: the output must be a contiguous float32 CPU tensor [3," +
                std::to_string(h) + "," + std::to_string(w) + "] for this image, got " +
                (out.defined() ? c10::str(out.scalar_type(), out.sizes())
                               : std::string("an undefined tensor")));

  // Two vectorized passes: split interleaved BGR into planes, then one fused scale+shift per
  // plane (convertTo) written straight into the tensor's memory through a Mat header. The
  // header does not own the memory, so `out` stays the owner and nothing dangles.
  cv::Mat planes[3];
  cv::split(bgr_u8, planes);
  float* base = out.data_ptr<float>();
  for (int c = 0; c < 3; ++c) {  // c is the RGB channel; OpenCV stores B first.
    cv::Mat dst(h, w, CV_32F, base + static_cast<std::ptrdiff_t>(c) * h * w);
    const double alpha = 1.0 / (255.0 * std[c]);
    const double beta = -static_cast<double>(mean[c]) / std[c];
    planes[2 - c].convertTo(dst, CV_32F, alpha, beta);
  }
}

torch::Tensor image_to_tensor(const cv::Mat& bgr_u8, const ChannelStats& mean,
                              const ChannelStats& std) {
  torch::Tensor out = torch::empty({3, bgr_u8.rows, bgr_u8.cols}, torch::kFloat32);
  image_to_tensor_into(bgr_u8, mean, std, out);
  return out;
}

cv::Mat tensor_to_image(const torch::Tensor& chw, const ChannelStats& mean,
                        const ChannelStats& std) {
  if (!chw.defined() || chw.dim() != 3 || chw.size(0) != 3 || chw.size(1) == 0 || chw.size(2) == 0)
    throw Error("tensor_to_image: expected a tensor [3,H,W], got " +
                (chw.defined() ? c10::str(chw.sizes()) : std::string("an undefined tensor")) +
                "; select one image of a batch with batch[i]");
  check_stats(std, "tensor_to_image");
  // The clone-free path when possible: contiguous() and to() return `chw` itself if it is
  // already a contiguous float CPU tensor; `t` keeps the storage alive while headers view it.
  const torch::Tensor t = chw.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  const int h = static_cast<int>(t.size(1));
  const int w = static_cast<int>(t.size(2));
  float* base = t.data_ptr<float>();
  std::vector<cv::Mat> bgr(3);
  for (int c = 0; c < 3; ++c) {
    cv::Mat plane(h, w, CV_32F, base + static_cast<std::ptrdiff_t>(c) * h * w);
    // u8 = round(255 * (x * std + mean)); convertTo saturates, which is the clamp.
    plane.convertTo(bgr[2 - c], CV_8U, 255.0 * std[c], 255.0 * mean[c]);
  }
  cv::Mat out;
  cv::merge(bgr, out);
  return out;
}

}  // namespace ppreid::tensor
