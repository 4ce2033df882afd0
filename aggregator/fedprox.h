#pragma once

#include "aggregator/fedavg.h"

namespace ppreid::agg {

// FedProx (Li et al. 2020): on the server it is FedAvg; the difference is on the sites, which
// add the proximal term mu/2 * sum ||w - w_global||^2 to their loss (reid::proximal_term in
// core/reid/proximal.h). The Task carries mu: task_settings() = {"proximal_mu": mu}.
class FedProx : public FedAvg {
 public:
  explicit FedProx(StrategyConfig config) : FedAvg(config) {}
  nlohmann::json task_settings() const override;
};

// The key of Task settings that carries FedProx's mu (absent: the site trains without it).
inline constexpr const char* kProximalMuSetting = "proximal_mu";

}  // namespace ppreid::agg
