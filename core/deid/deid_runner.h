#pragma once

#include <filesystem>
#include <optional>
#include <nlohmann/json.hpp>

#include "core/deid/deidentifier.h"

namespace ppreid::deid {

struct DeidRunOptions {
  std::filesystem::path in;
  std::filesystem::path out;
  int threads = 0;             // 0 = all cores
  int jpeg_quality = 95;       // for .jpg outputs; PNG inputs stay lossless PNG
  bool resume = false;         // continue an interrupted run into the same --out
  // The quality report (SSIM, PSNR against the raw images, per image and mean): computed from
  // the raw pixels, so it is written only here, never into `out`, and stays with the data owner.
  std::optional<std::filesystem::path> report;
  bool detectability = false;  // HOG people detector before and after, into the report
};

struct DeidReport {
  nlohmann::json manifest;  // what deid.json holds
  int images = 0;           // de-identified in this run
  int resumed = 0;          // already present from an interrupted run, not released again
  double mean_ssim = 0.0;   // NaN without a report
  double mean_psnr = 0.0;   // finite images only; NaN without a report
  double seconds = 0.0;
};

// The name of the release manifest in the output directory.
inline constexpr const char* kReleaseManifest = "deid.json";

// De-identifies every image of a dataset (train, query, gallery; junk is not copied) into the
// same layout and file names under `out`, copies the side files the method passes on, and
// writes deid.json. That folder is the release: every byte in it is either a de-identified image,
// a side file the method releases, or a manifest field that does not depend on the raw pixels
// (method, parameters, epsilon and its certificate, counts, version); never a seed or a quality
// figure. Each image is written atomically, so an interrupted run leaves only complete images;
// `resume` finishes such a run without releasing any image twice. Refuses (before writing
// anything) an output inside the input or vice versa, a report inside the output, and a
// non-empty output without `resume`.
DeidReport deidentify_dataset(Deidentifier& method, const DeidRunOptions& options);

}  // namespace ppreid::deid
