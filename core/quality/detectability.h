#pragma once

#include <opencv2/core.hpp>
#include <opencv2/objdetect.hpp>

namespace ppreid::quality {

// Whether OpenCV's built-in HOG + linear SVM people detector (Dalal-Triggs, 64x128 window) still
// finds a person. Crops are resized to the 64x128 window with a 16-pixel replicated border so
// the window fits a tightly cropped pedestrian; full frames are scanned at several scales.
// Thread-safe: each call uses its own descriptor.
class PeopleDetector {
 public:
  explicit PeopleDetector(double hit_threshold = 0.0);
  bool person_in_crop(const cv::Mat& bgr) const;
  // Number of people found in a full frame (non-maximum suppressed by OpenCV's grouping).
  int count_in_frame(const cv::Mat& bgr) const;

 private:
  double hit_threshold_;
  std::vector<float> svm_;
};

// Detectability of a de-identification: detected-after / detected-before over the same images
// (1 = the detector is not affected, 0 = nobody is found any more). NaN when no original was
// detected, because then the ratio says nothing.
struct Detectability {
  int detected_before = 0;
  int detected_after = 0;
  int images = 0;
  double ratio() const;
};

}  // namespace ppreid::quality
