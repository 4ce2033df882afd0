#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "core/data/dataset.h"
#include "core/deid/pis/network.h"
#include "core/deid/pis/pis_config.h"
#include "core/deid/pis/pis_images.h"
#include "core/util/rng.h"

namespace ppreid::deid::pis {

// The train split decoded once into memory (uint8, a few KB per crop) with each image's
// stickman. Images without a usable pose (no shoulder or no hip visible) cannot condition the
// network and are left out; `skipped` lists them so the caller can report them.
class PisTrainingSet {
 public:
  PisTrainingSet(const data::Dataset& dataset, const Geometry& geometry);
  struct Batch {
    torch::Tensor images;    // [B,3,H,W] float in [-1, 1]
    torch::Tensor stickmen;  // [B,3,H,W] float in [0, 1]
    torch::Tensor labels;    // [B] int64, 0..num_ids-1
  };
  // Uniformly drawn images (with replacement across batches), each mirrored with flip_prob.
  Batch sample(int batch_size, util::Rng& rng, double flip_prob) const;
  // The images at these positions, unflipped (grids, evaluation).
  Batch at(const std::vector<int>& positions) const;
  int size() const { return static_cast<int>(labels_.size()); }
  int num_ids() const { return num_ids_; }
  const std::vector<std::string>& skipped() const { return skipped_; }
  const std::vector<int>& labels() const { return labels_; }

 private:
  torch::Tensor images_;    // [N,3,H,W] uint8, RGB
  torch::Tensor stickmen_;  // [N,3,H,W] uint8, 0/255
  std::vector<int> labels_;
  int num_ids_ = 0;
  std::vector<std::string> skipped_;
};

struct PisLossParts {
  torch::Tensor total;
  double kl = 0, rec = 0, cycle = 0, app = 0, kl_weight = 0;
};

// One training step's losses (PIS eq. 4-7) for a batch. Stage 1: L_cvae = w_kl * KL(q||p) +
// rec(x, x'). Stage 2 adds L_cycle = KL(q_hat || q(z|x_hat, s)), where x_hat mixes each image
// with the next one of a different identity in the batch (pairs of the same identity are left
// out of the term), and L_app = CE(f_c(mu), y).
class FeatureNetwork;

PisLossParts pis_losses(PisNet& net, FeatureNetwork* features, const PisConfig& config,
                        const PisTrainingSet::Batch& batch, int stage, double kl_weight);

struct PisTrainRunOptions {
  std::filesystem::path out;  // checkpoint/, metrics.jsonl, grids/, summary.json
  bool resume = false;
  // Overrides feature_loss.reid_model (and selects network reid) when given.
  std::optional<std::filesystem::path> feature_model;
  // Stop (with a checkpoint) after this many steps in this invocation, to split a long run into
  // time-limited jobs that --resume continues; 0: run to the end.
  int max_steps = 0;
};

struct PisTrainSummary {
  int steps_run = 0;
  int last_step = 0;
  bool finished = false;  // all configured steps are done
  double seconds = 0;
  double images_per_second = 0;
  int images = 0, skipped = 0;
  nlohmann::json metrics;  // reconstruction_ssim, shift_ssim, ...
  nlohmann::json to_json() const;
};

// Two-stage PIS training with Adam, KL warm-up, step lr decay, a checkpoint every
// checkpoint_every steps (and at the end), a PNG grid (original | reconstruction | partner |
// shifted) every grid_every steps, metrics.jsonl, and summary.json with the reconstruction SSIM
// and the SSIM of shifted images to their originals. `resume` continues from out/checkpoint with
// the same batches and noise an uninterrupted run would have drawn.
PisTrainSummary train_pis(const PisConfig& config, const data::Dataset& dataset,
                          const PisTrainRunOptions& options);

// Mean SSIM of reconstructions (z = posterior mean) and of k=2 shifts (lambda 0.5, partner =
// next image of another identity) to the originals, over up to `max_images` training images.
nlohmann::json evaluate_reconstruction(PisNet& net, const PisTrainingSet& set, const Geometry& g,
                                       int max_images = 256);

}  // namespace ppreid::deid::pis
