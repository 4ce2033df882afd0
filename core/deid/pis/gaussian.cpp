#include "core/deid/pis/gaussian.h"

#include "core/util/error.h"

namespace ppreid::deid::pis {

LatentGaussian LatentGaussian::detached() const {
  LatentGaussian g;
  for (const auto& m : mu) g.mu.push_back(m.detach());
  for (const auto& l : logvar) g.logvar.push_back(l.detach());
  return g;
}

torch::Tensor kl_divergence(const LatentGaussian& q, const LatentGaussian& p) {
  if (q.mu.size() != p.mu.size() || q.mu.empty())
    throw Error("kl_divergence: the two latents have " + std::to_string(q.mu.size()) + " and " +
                std::to_string(p.mu.size()) + " scales");
  torch::Tensor total;
  for (size_t i = 0; i < q.mu.size(); ++i) {
    torch::Tensor d2 = (q.mu[i] - p.mu[i]).pow(2);
    torch::Tensor term;
    if (q.unit_variance() && p.unit_variance()) {
      term = 0.5 * d2;
    } else {
      torch::Tensor lq = q.unit_variance() ? torch::zeros_like(q.mu[i]) : q.logvar[i];
      torch::Tensor lp = p.unit_variance() ? torch::zeros_like(p.mu[i]) : p.logvar[i];
      term = 0.5 * (lp - lq + (lq.exp() + d2) * torch::exp(-lp) - 1.0);
    }
    torch::Tensor per_image = term.flatten(1).sum(1).mean();
    total = total.defined() ? total + per_image : per_image;
  }
  return total;
}

LatentGaussian mix_latents(const std::vector<LatentGaussian>& parts,
                           const std::vector<double>& lambdas) {
  if (parts.size() != lambdas.size() || parts.empty())
    throw Error("mix_latents: " + std::to_string(parts.size()) + " latents but " +
                std::to_string(lambdas.size()) + " weights");
  LatentGaussian out;
  for (size_t s = 0; s < parts[0].mu.size(); ++s) {
    torch::Tensor m = parts[0].mu[s] * lambdas[0];
    for (size_t i = 1; i < parts.size(); ++i) m = m + parts[i].mu[s] * lambdas[i];
    out.mu.push_back(m);
  }
  return out;
}

std::vector<torch::Tensor> reparameterize(const LatentGaussian& g) {
  std::vector<torch::Tensor> z;
  for (size_t i = 0; i < g.mu.size(); ++i) {
    torch::Tensor eps = torch::randn_like(g.mu[i]);
    z.push_back(g.unit_variance() ? g.mu[i] + eps : g.mu[i] + torch::exp(0.5 * g.logvar[i]) * eps);
  }
  return z;
}

}  // namespace ppreid::deid::pis
