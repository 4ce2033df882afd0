#pragma once

#include <torch/torch.h>

#include <vector>

namespace ppreid::deid::pis {

// A diagonal Gaussian over the multi-scale latent: one mean map per latent scale. An undefined
// logvar means unit variance (VUNet's posterior and prior).
struct LatentGaussian {
  std::vector<torch::Tensor> mu;
  std::vector<torch::Tensor> logvar;  // empty, or one per scale

  bool unit_variance() const { return logvar.empty(); }
  LatentGaussian detached() const;
};

// KL(q || p) for diagonal Gaussians, summed over every latent element and averaged over the
// batch: 0.5 * sum(lv_p - lv_q + (exp(lv_q) + (mu_q - mu_p)^2) / exp(lv_p) - 1). With unit
// variances on both sides this is 0.5 * ||mu_q - mu_p||^2.
torch::Tensor kl_divergence(const LatentGaussian& q, const LatentGaussian& p);

// The identity shift's mixture (PIS eq. 2): N(sum_i lambda_i mu_i, I). All parts must have the
// same shapes; lambdas are not re-validated here (see validate_lambdas).
LatentGaussian mix_latents(const std::vector<LatentGaussian>& parts,
                           const std::vector<double>& lambdas);

// z = mu + exp(logvar / 2) * eps with eps ~ N(0, I) from torch's generator: the
// re-parameterization trick used in training.
std::vector<torch::Tensor> reparameterize(const LatentGaussian& g);

}  // namespace ppreid::deid::pis
