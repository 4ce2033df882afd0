#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <string>

#include "core/data/dataset.h"

namespace ppreid::deid {

// What a de-identifier may know about the image it is given besides the pixels.
struct ImageContext {
  const data::ImageRecord* record = nullptr;  // may be null for loose images
  const data::Pose* pose = nullptr;           // keypoints when the dataset has them
  std::uint64_t index = 0;                    // stable position in the dataset (noise streams)
};

// One de-identification method (image DP, a classic baseline, PIS). apply() must be safe to
// call from several threads at once and must return an image of the same size and type.
class Deidentifier {
 public:
  virtual ~Deidentifier() = default;
  virtual std::string name() const = 0;
  // Parameters for the manifest (deid.json); never secrets.
  virtual nlohmann::json parameters() const = 0;
  // Called once before a dataset is processed (PIS picks identity partners here).
  virtual void prepare(const data::Dataset&) {}
  virtual cv::Mat apply(const cv::Mat& bgr, const ImageContext& ctx) const = 0;
};

}  // namespace ppreid::deid
