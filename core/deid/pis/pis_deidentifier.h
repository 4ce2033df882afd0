#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/deid/deidentifier.h"
#include "core/deid/pis/pis_checkpoint.h"
#include "core/deid/pis/shift_plan.h"

namespace ppreid::deid::pis {

struct PisShiftOptions {
  std::filesystem::path model;      // `ppreid pis train` checkpoint directory
  int k = kDefaultK;
  double lambda = kDefaultLambda;   // the target's weight; partners share 1 - lambda
  double max_weight = kDefaultMaxWeight;
  bool sample = false;              // z ~ N(mix, I) instead of the mixture's mean
  std::string opposite_attribute;   // partners with a different value of this attribute
  std::optional<std::filesystem::path> partners;  // cross-dataset partners
  std::optional<std::uint64_t> seed;  // partners, labels and latent noise; nullopt: CSPRNG
  // Where prepare() writes the plan, encrypted under key_file, before any image is released
  // (one_time_key.h). With `reuse_one_time_key` an existing file is read instead of drawing a new
  // plan: how an interrupted CSPRNG run is resumed with the same identities.
  std::optional<std::filesystem::path> one_time_key;
  std::optional<std::filesystem::path> key_file;
  bool reuse_one_time_key = false;
  int batch_size = 32;  // crops per forward pass in the runner
};

// PIS as a de-identification method (PIS eq. 2-3): for an image x of identity A with pose s,
//   z_hat = lambda_1 mu(x, s) + sum_i lambda_i mu(x_i, s_i)   (or a draw from N(z_hat, I)),
//   x_hat = D_theta(z_hat, E_psi(s)),
// where the x_i are the plan's fixed partner images of A: every image of A is decoded with the
// same partners, keeping "same person or not" while A's appearance is replaced. Released files
// carry the plan's new labels; the original identity attributes are not released; images with no
// usable pose are not released (skip_reason). apply() is thread-safe (inference only).
// parameters() never holds the seed or the plan: deid.json is released with the data.
class PisDeidentifier final : public Deidentifier {
 public:
  explicit PisDeidentifier(PisShiftOptions options);

  std::string name() const override { return "pis"; }
  nlohmann::json parameters() const override;
  void prepare(const data::Dataset& dataset) override;
  cv::Mat apply(const cv::Mat& bgr, const ImageContext& ctx) const override;
  std::string output_path(const data::ImageRecord& r) const override;
  bool keeps_identity_attributes() const override { return false; }
  bool seeded() const override { return options_.seed.has_value(); }
  std::optional<std::string> skip_reason(const ImageContext& ctx) const override;

  // Shifts several images of one dataset at once (one forward pass: the fast path). Every
  // context needs a record and a usable pose.
  std::vector<cv::Mat> apply_batch(const std::vector<cv::Mat>& images,
                                   const std::vector<ImageContext>& contexts) const override;
  int preferred_batch() const override { return options_.batch_size; }
  // The plan of the last prepare(): the one-time key (never written by this class).
  const ShiftPlan& plan() const;
  const PisModel& model() const { return model_; }

 private:
  // Network-ready stickmen [N,3,H,W] of these poses.
  torch::Tensor stickmen(const std::vector<const data::Pose*>& poses) const;
  LatentGaussian encode(const std::vector<cv::Mat>& images, const torch::Tensor& stickmen) const;

  PisShiftOptions options_;
  std::vector<double> lambdas_;
  // Forward passes are not const in LibTorch; inference in eval mode does not change the module.
  mutable PisModel model_;
  std::optional<data::Dataset> partner_dataset_;
  std::optional<ShiftPlan> plan_;
  data::Layout layout_ = data::Layout::kMarket1501;
  // Posterior means of every partner image, [1,...] per latent scale, keyed by path.
  std::map<std::string, std::vector<torch::Tensor>> partner_mu_;
};

}  // namespace ppreid::deid::pis
