#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/profile/profile.h"

namespace ppreid::deid::pis {

// The conditional VAE (VUNet-style U-Net). Scale i works at 1/2^i of the (padded) input;
// channels[i] is its width, `blocks` residual blocks per scale (the paper's m). The latent lives
// at the `latent_scales` coarsest scales.
struct NetworkOptions {
  std::vector<int> channels = {32, 64, 128, 128};
  int blocks = 1;
  int latent_scales = 1;
  int latent_channels = 16;
  // unit: q(z|x,s) = N(mu, I) as in VUNet; learned: the posterior also predicts log-variance.
  std::string posterior_variance = "unit";
  // How the similarity-preservation classifier sees mu: average (spatially pooled per channel)
  // or flatten (every latent element; ties the classifier to the spatial layout).
  std::string app_pooling = "average";
};

// The reconstruction term's fixed feature network V (see feature_network.h).
struct FeatureLossOptions {
  std::string network = "random";  // random | reid | vgg19
  std::filesystem::path reid_model;     // network: reid, a `ppreid train` checkpoint directory
  std::filesystem::path vgg19_weights;  // network: vgg19, torchvision's vgg19 state_dict (.pth)
  double alpha_rec = 5.0;               // the paper's weight of the perceptual term
  double pixel_l1 = 1.0;                // weight of an extra pixel L1 term (0: off)
  std::uint64_t random_seed = 7;        // network: random, the seed of its fixed weights
};

struct PisTrainOptions {
  int batch_size = 16;
  double lr = 1e-3;                     // Adam, as in the paper
  double lr_decay = 0.5;                // multiply lr by this ...
  int lr_decay_every = 0;               // ... every N steps (0: constant)
  int stage1_steps = 1000;              // conditional VAE only (L_cvae)
  int stage2_steps = 500;               // + L_cycle + L_app
  double kl_weight = 1.0;
  int kl_warmup_steps = 0;              // KL weight rises linearly from 0 over these steps
  double cycle_weight = 1.0;
  double app_weight = 1.0;
  double flip_prob = 0.5;               // horizontal flip (the stickman's sides swap too)
  int checkpoint_every = 200;           // steps
  int grid_every = 200;                 // steps; 0: only at the end
  int log_every = 50;
};

// What `ppreid deid --method pis` does unless flags override it.
struct ShiftOptions {
  int k = 2;
  double lambda = 0.5;                  // weight of the target image
  double max_weight = 0.5;              // d: no weight may exceed it
  std::string sample = "mean";          // mean: z = sum lambda_i mu_i; sample: z ~ N(that, I)
  int batch_size = 32;
};

// configs/pis/*.yaml: the profile sections (runtime, image, ...) plus model, feature_loss,
// train and shift.
struct PisConfig {
  Profile profile;
  bool pad_square = false;              // the paper pads 128x64 crops to 128x128
  NetworkOptions network;
  FeatureLossOptions features;
  PisTrainOptions train;
  ShiftOptions shift;
  // Network input size: the profile's image size, padded to a square when pad_square.
  int input_height() const { return profile.transform.height; }
  int input_width() const {
    return pad_square ? profile.transform.height : profile.transform.width;
  }
};

PisConfig load_pis_config(const std::filesystem::path& file);
PisConfig parse_pis_config(const std::string& yaml, const std::string& file_label);

}  // namespace ppreid::deid::pis
