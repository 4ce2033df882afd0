#include "aggregator/fedprox.h"

namespace ppreid::agg {

nlohmann::json FedProx::task_settings() const { return {{kProximalMuSetting, config_.mu}}; }

}  // namespace ppreid::agg
