#include "core/quality/image_quality.h"

#include <opencv2/imgproc.hpp>

#include <cmath>
#include <limits>
#include <string>

#include "core/util/error.h"

namespace ppreid::quality {
namespace {

void check_pair(const cv::Mat& a, const cv::Mat& b, const char* metric) {
  if (a.empty() || b.empty() || a.size() != b.size() || a.type() != b.type() ||
      a.depth() != CV_8U || (a.channels() != 1 && a.channels() != 3))
    throw Error(std::string(metric) +
                " needs two non-empty 8-bit images of the same size and channels (got " +
                std::to_string(a.cols) + "x" + std::to_string(a.rows) + " and " +
                std::to_string(b.cols) + "x" + std::to_string(b.rows) + ")");
}

cv::Mat luminance(const cv::Mat& img) {
  cv::Mat f;
  if (img.channels() == 1) {
    img.convertTo(f, CV_64F);
    return f;
  }
  img.convertTo(f, CV_64FC3);
  cv::Mat y;
  // BGR order: weights for B, G, R.
  cv::transform(f, y, cv::Matx13d(0.114, 0.587, 0.299));
  return y;
}

}  // namespace

double ssim(const cv::Mat& a, const cv::Mat& b) {
  check_pair(a, b, "SSIM");
  constexpr int kWin = 11, kPad = kWin / 2;
  if (a.rows < kWin || a.cols < kWin)
    throw Error("SSIM needs images of at least 11x11 pixels (got " + std::to_string(a.cols) + "x" +
                std::to_string(a.rows) + ")");
  const double c1 = std::pow(0.01 * 255.0, 2), c2 = std::pow(0.03 * 255.0, 2);
  cv::Mat x = luminance(a), y = luminance(b);
  cv::Mat g = cv::getGaussianKernel(kWin, 1.5, CV_64F);
  auto filt = [&](const cv::Mat& m) {
    cv::Mat out;
    cv::sepFilter2D(m, out, CV_64F, g, g, cv::Point(-1, -1), 0, cv::BORDER_REFLECT);
    return out;
  };
  cv::Mat ux = filt(x), uy = filt(y);
  cv::Mat uxx = filt(x.mul(x)), uyy = filt(y.mul(y)), uxy = filt(x.mul(y));
  cv::Mat vx = uxx - ux.mul(ux), vy = uyy - uy.mul(uy), vxy = uxy - ux.mul(uy);
  cv::Mat num = (2 * ux.mul(uy) + c1).mul(2 * vxy + c2);
  cv::Mat den = (ux.mul(ux) + uy.mul(uy) + c1).mul(vx + vy + c2);
  cv::Mat s = num / den;
  cv::Rect inner(kPad, kPad, a.cols - 2 * kPad, a.rows - 2 * kPad);
  return cv::mean(s(inner))[0];
}

double psnr(const cv::Mat& a, const cv::Mat& b) {
  check_pair(a, b, "PSNR");
  double mse = cv::norm(a, b, cv::NORM_L2SQR) / static_cast<double>(a.total() * a.channels());
  if (mse == 0.0) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(255.0 * 255.0 / mse);
}

}  // namespace ppreid::quality
