#pragma once

#include <opencv2/core.hpp>

namespace ppreid::testing {

inline cv::Vec3b bgr(const cv::Scalar& s) {
  return cv::Vec3b(static_cast<uchar>(s[0]), static_cast<uchar>(s[1]), static_cast<uchar>(s[2]));
}

// Pixels of exactly `color` in `rect` of a CV_8UC3 image.
inline int count_color(const cv::Mat& image, const cv::Scalar& color, cv::Rect rect) {
  rect &= cv::Rect(0, 0, image.cols, image.rows);
  int n = 0;
  for (int y = rect.y; y < rect.y + rect.height; ++y)
    for (int x = rect.x; x < rect.x + rect.width; ++x) n += image.at<cv::Vec3b>(y, x) == bgr(color);
  return n;
}

inline int count_color(const cv::Mat& image, const cv::Scalar& color) {
  return count_color(image, color, cv::Rect(0, 0, image.cols, image.rows));
}

inline bool identical(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && cv::norm(a, b, cv::NORM_INF) == 0;
}

}  // namespace ppreid::testing
