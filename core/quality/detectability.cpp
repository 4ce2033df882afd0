#include "core/quality/detectability.h"

#include <opencv2/imgproc.hpp>

#include <limits>

namespace ppreid::quality {

PeopleDetector::PeopleDetector(double hit_threshold)
    : hit_threshold_(hit_threshold), svm_(cv::HOGDescriptor::getDefaultPeopleDetector()) {}

bool PeopleDetector::person_in_crop(const cv::Mat& bgr) const {
  cv::HOGDescriptor hog;  // 64x128 window
  hog.setSVMDetector(svm_);
  cv::Mat resized, padded;
  cv::resize(bgr, resized, cv::Size(64 - 16, 128 - 32), 0, 0, cv::INTER_LINEAR);
  cv::copyMakeBorder(resized, padded, 16, 16, 8, 8, cv::BORDER_REPLICATE);
  std::vector<cv::Point> hits;
  std::vector<double> weights;
  hog.detect(padded, hits, weights, hit_threshold_, cv::Size(8, 8), cv::Size(0, 0));
  return !hits.empty();
}

int PeopleDetector::count_in_frame(const cv::Mat& bgr) const {
  cv::HOGDescriptor hog;
  hog.setSVMDetector(svm_);
  std::vector<cv::Rect> found;
  hog.detectMultiScale(bgr, found, hit_threshold_, cv::Size(8, 8), cv::Size(16, 16), 1.05, 2.0);
  return static_cast<int>(found.size());
}

double Detectability::ratio() const {
  if (detected_before == 0) return std::numeric_limits<double>::quiet_NaN();
  return static_cast<double>(detected_after) / detected_before;
}

}  // namespace ppreid::quality
