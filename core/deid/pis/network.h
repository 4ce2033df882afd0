#pragma once

#include <torch/torch.h>

#include <vector>

#include "core/deid/pis/gaussian.h"
#include "core/deid/pis/pis_config.h"

namespace ppreid::deid::pis {

// PIS's residual block: x + conv3x3(ELU(x)). With `skip_channels` > 0 it also takes a U-Net
// skip feature a (VUNet's gated-free variant): x + conv3x3(ELU([x, conv1x1(ELU(a))])).
struct ResBlockImpl : torch::nn::Module {
  ResBlockImpl(int channels, int skip_channels = 0);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& skip = {});

 private:
  torch::nn::Conv2d conv_{nullptr};
  torch::nn::Conv2d skip_proj_{nullptr};
};
TORCH_MODULE(ResBlock);

// Sub-pixel convolution (Shi et al. 2016): conv3x3 to 4 * out channels, then pixel shuffle
// rearranges each group of 4 channels into a 2x2 block, doubling height and width.
struct SubPixelUpImpl : torch::nn::Module {
  SubPixelUpImpl(int in_channels, int out_channels);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Conv2d conv_{nullptr};
};
TORCH_MODULE(SubPixelUp);

// E_psi and F_phi share this structure: conv3x3 in, then per scale `blocks` residual blocks
// followed by a stride-2 conv3x3 down to the next scale. Returns one feature map per scale
// (after its residual blocks), finest first.
struct EncoderImpl : torch::nn::Module {
  EncoderImpl(int in_channels, const std::vector<int>& channels, int blocks);
  std::vector<torch::Tensor> forward(const torch::Tensor& x);

 private:
  torch::nn::Conv2d conv_in_{nullptr};
  std::vector<std::vector<ResBlock>> blocks_;
  std::vector<torch::nn::Conv2d> down_;
};
TORCH_MODULE(Encoder);

// The conditional VAE of PIS:
//   E_psi(s)       structure encoder on the stickman: decoder skips and the prior p(z|s),
//   F_phi(x, s)    appearance encoder on image + stickman: the posterior q(z|x,s),
//   D_theta(z, E)  decoder: from the coarsest scale up, residual blocks fed with E_psi's skips,
//                  the latent concatenated in at each latent scale, sub-pixel upsampling,
//   f_c            the similarity-preservation classifier on mu (PIS eq. 5).
// Images are RGB in [-1, 1], stickmen in [0, 1], both [N,3,H,W]; H and W divisible by
// 2^(scales-1). Parameters are named prior.*, posterior.*, decoder.*, classifier.*.
struct PisNetImpl : torch::nn::Module {
  // height x width: the network input size (fixes the classifier's size for `flatten`).
  PisNetImpl(NetworkOptions options, int num_ids, int height, int width);

  // E_psi: multi-scale structure features of the pose.
  std::vector<torch::Tensor> structure(const torch::Tensor& stickman);
  // p(z|s) from the structure features (unit variance).
  LatentGaussian prior(const std::vector<torch::Tensor>& structure_features);
  // q(z|x,s).
  LatentGaussian posterior(const torch::Tensor& image, const torch::Tensor& stickman);
  // D_theta: one latent tensor per latent scale (coarsest last) and E_psi's features.
  torch::Tensor decode(const std::vector<torch::Tensor>& z,
                       const std::vector<torch::Tensor>& structure_features);
  // f_c(mu): identity logits (needs num_ids > 0).
  torch::Tensor classify(const std::vector<torch::Tensor>& mu);

  const NetworkOptions& options() const { return options_; }
  int num_ids() const { return num_ids_; }
  int scales() const { return static_cast<int>(options_.channels.size()); }
  // Index of the first latent scale: latents live at scales [first_latent_scale(), scales()).
  int first_latent_scale() const { return scales() - options_.latent_scales; }

 private:
  NetworkOptions options_;
  int num_ids_;
  Encoder prior_enc_{nullptr}, posterior_enc_{nullptr};
  std::vector<torch::nn::Conv2d> prior_mu_, posterior_mu_, posterior_logvar_;
  std::vector<torch::nn::Conv2d> fuse_;     // per latent scale: [h, z] -> h
  std::vector<std::vector<ResBlock>> dec_blocks_;
  std::vector<SubPixelUp> up_;              // up_[i] goes from scale i + 1 to scale i
  torch::nn::Conv2d conv_out_{nullptr};
  torch::nn::Linear classifier_{nullptr};
};
TORCH_MODULE(PisNet);

// Trainable parameter elements.
std::int64_t count_parameters(torch::nn::Module& module);

}  // namespace ppreid::deid::pis
