#include "simulations/report/text.h"

#include <opencv2/imgproc.hpp>

namespace ppreid::sim::report {
namespace {
constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
constexpr int kThickness = 1;
}  // namespace

cv::Size text_size(const std::string& text, double scale) {
  if (text.empty()) return {0, 0};  // OpenCV reports 1 px of width for nothing
  int baseline = 0;
  const cv::Size size = cv::getTextSize(text, kFont, scale, kThickness, &baseline);
  return {size.width, size.height + baseline};
}

int line_height(double scale) { return text_size("Ag|", scale).height; }

void draw_text(cv::Mat& image, const std::string& text, cv::Point top_left, double scale,
               const cv::Scalar& color) {
  int baseline = 0;
  const cv::Size size = cv::getTextSize(text, kFont, scale, kThickness, &baseline);
  cv::putText(image, text, top_left + cv::Point(0, size.height), kFont, scale, color, kThickness,
              cv::LINE_AA);
}

void draw_text_vertical(cv::Mat& image, const std::string& text, cv::Point top_left, double scale,
                        const cv::Scalar& color) {
  const cv::Size size = text_size(text, scale);
  if (size.width <= 0 || size.height <= 0) return;
  cv::Mat patch(size, image.type(), cv::Scalar::all(255));
  draw_text(patch, text, {0, 0}, scale, color);
  cv::rotate(patch, patch, cv::ROTATE_90_COUNTERCLOCKWISE);
  const cv::Rect target = cv::Rect(top_left, patch.size()) & cv::Rect(0, 0, image.cols, image.rows);
  if (target.empty()) return;
  // Darker of the two keeps whatever was drawn under the patch's white background.
  cv::Mat dst = image(target);
  cv::min(dst, patch(cv::Rect(target.tl() - top_left, target.size())), dst);
}

}  // namespace ppreid::sim::report
