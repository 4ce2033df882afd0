#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <optional>
#include <string>
#include <vector>

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
  // True when the randomness comes from a seed (experiments): such output is reproducible by
  // anyone with the seed and is marked "private": false.
  virtual bool seeded() const { return false; }
  // Called once before a dataset is processed (PIS picks identity partners here).
  virtual void prepare(const data::Dataset&) {}
  virtual cv::Mat apply(const cv::Mat& bgr, const ImageContext& ctx) const = 0;
  // Images the runner should hand over per apply_batch() call: a network amortizes one forward
  // pass over many crops (PIS: about 6x faster at 32 than one at a time, bench_pis).
  virtual int preferred_batch() const { return 1; }
  // Same contract as apply() for several images; the default calls apply() for each.
  virtual std::vector<cv::Mat> apply_batch(const std::vector<cv::Mat>& images,
                                           const std::vector<ImageContext>& contexts) const {
    std::vector<cv::Mat> out;
    for (size_t i = 0; i < images.size(); ++i) out.push_back(apply(images[i], contexts[i]));
    return out;
  }

  // Hooks for methods that change identities (PIS). The defaults keep an image's name, keep the
  // identity attributes and release every image. All are called after prepare().

  // Where the released image goes, relative to the output root. It must stay in the image's split
  // directory and follow the dataset's naming layout; two images may not share one.
  virtual std::string output_path(const data::ImageRecord& r) const { return r.path; }
  // False when released labels are no longer the original identities: attributes.csv describes
  // the original people, so copying it would link the new labels to real attributes.
  virtual bool keeps_identity_attributes() const { return true; }
  // Whether the release may carry this side file of the input (keypoints.csv, attributes.csv,
  // municipalities.csv). Poses and attributes are derived from the raw images: a method whose
  // guarantee covers only the pixels it releases (image DP) must not pass them on.
  virtual bool releases_side_file(const std::string& name) const {
    return name != "attributes.csv" || keeps_identity_attributes();
  }
  // A reason not to release this image (e.g. PIS without a usable pose); nullopt releases it.
  // Skipped images are listed in deid.json and their keypoints rows are dropped.
  virtual std::optional<std::string> skip_reason(const ImageContext&) const {
    return std::nullopt;
  }
};

}  // namespace ppreid::deid
