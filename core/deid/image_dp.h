#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <utility>

#include "core/deid/deidentifier.h"
#include "core/deid/discrete_laplace.h"

namespace ppreid::deid {

enum class Calibration {
  kPaper,  // Delta = blocks * (L-1)^3, exactly the paper's Table I
  kTight,  // Delta = blocks * 3 * (L-1), the true L1 sensitivity in the level domain
};

struct ImageDpOptions {
  double epsilon = 1.0;       // per image; infinity gives pixelization + quantization only
  int pixel_bits = 0;         // b: blocks of 2^b x 2^b pixels
  int color_bits = 6;         // c: drop c bits, keeping L = 2^(8-c) levels per channel
  Calibration calibration = Calibration::kTight;
  std::optional<std::uint64_t> seed;  // deterministic DRBG for experiments; CSPRNG when empty
};

// The paper's four settings: A (b=0,c=6), B (b=1,c=5), C (b=2,c=4), D (b=0,c=0).
ImageDpOptions image_dp_preset(char preset, double epsilon);

const char* calibration_name(Calibration c);
int blocks_of(int width, int height, int pixel_bits);
// Sensitivity for an image of the given size; throws when the calibration is unsound for the
// settings (paper formula with L = 2 understates the true sensitivity).
double sensitivity(const ImageDpOptions& o, int width, int height);
// The true L1 distance between the level vectors of two images of this size: 3 values per block,
// each moving by at most L-1 levels. Calibration kTight uses it as Delta; kPaper's is larger.
double l1_sensitivity(const ImageDpOptions& o, int width, int height);
// Throws ppreid::UsageError naming the flag for out-of-range settings.
void validate(const ImageDpOptions& o);

// epsilon-image DP (Maris, Matsuda, Yasumoto): pixelize, quantize, add discrete Laplace noise in
// the level domain, clamp, render back to 8 bits at the original size.
class ImageDp final : public Deidentifier {
 public:
  explicit ImageDp(ImageDpOptions options);
  std::string name() const override { return "dp"; }
  nlohmann::json parameters() const override;
  cv::Mat apply(const cv::Mat& bgr, const ImageContext& ctx) const override;
  bool seeded() const override { return options_.seed.has_value(); }
  // The epsilon covers the released pixels only; poses and attributes of the raw images would
  // add information that no noise covers, so only the camera-to-municipality map goes along.
  bool releases_side_file(const std::string& name) const override {
    return name == "municipalities.csv";
  }

  // The deterministic core: `rng` supplies the noise.
  cv::Mat apply_with(const cv::Mat& bgr, util::RandomSource& rng) const;
  const ImageDpOptions& options() const { return options_; }
  // The guarantee of the tables this instance samples for images of this size: their certified
  // loss per level times the true L1 sensitivity. Never above options().epsilon (inf for inf).
  double certified_epsilon(int width, int height) const;

 private:
  const ClampedLaplaceTable& table_for(int width, int height) const;

  ImageDpOptions options_;
  mutable std::mutex mu_;
  mutable std::map<std::pair<int, int>, std::unique_ptr<ClampedLaplaceTable>> tables_;
};

}  // namespace ppreid::deid
