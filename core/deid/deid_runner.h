#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/deid/deidentifier.h"

namespace ppreid::deid {

struct DeidRunOptions {
  std::filesystem::path in;
  std::filesystem::path out;
  int threads = 0;             // 0 = all cores
  int jpeg_quality = 95;       // for .jpg outputs; PNG inputs stay lossless PNG
  bool resume = false;         // continue an interrupted run into the same --out
  bool detectability = false;  // run the HOG people detector before and after
};

struct DeidReport {
  nlohmann::json manifest;  // what deid.json holds
  int images = 0;           // de-identified in this run
  int resumed = 0;          // already present from an interrupted run, not released again
  double mean_ssim = 0.0;
  double mean_psnr = 0.0;   // finite images only
  double seconds = 0.0;
};

// De-identifies every image of a dataset (train, query, gallery; junk is not copied) into the
// same layout and file names under `out`, copies the side files, and writes deid.json and
// deid_images.csv. Each image is written atomically, so an interrupted run leaves only complete
// images; `resume` finishes such a run without releasing any image twice. Refuses (before writing
// anything) an output inside the input or vice versa, and a non-empty output without `resume`.
DeidReport deidentify_dataset(Deidentifier& method, const DeidRunOptions& options);

}  // namespace ppreid::deid
