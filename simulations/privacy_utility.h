#pragma once

// The privacy side of the privacy-utility experiment (PIS paper, Table 2): for every federation
// run, the identity attack T_p and the attribute attack against what its sites released, and the
// PU-score that weighs them against the run's utility T_u.

#include <filesystem>
#include <vector>

#include <nlohmann/json.hpp>

#include "simulations/federation_run.h"
#include "simulations/population.h"
#include "simulations/sim_config.h"

namespace ppreid::sim {

// One table row: {"method","T_u":{mAP,rank1,centroid_mAP,centroid_rank1},"T_p":{mAP,rank1,
// valid_queries,...},"attribute_attack":{mean_f1,...},"pu_score":{mAP,rank1},"pu_sweep_mAP":[..]}.
// The attackers (a ReID model and an attribute classifier, trained on raw images of the held-out
// identities: other people than the targets) are trained once under OUT/attackers/ and reused;
// every run's row is kept in <run dir>/privacy.json so a resumed experiment does not redo it.
nlohmann::json privacy_utility_rows(const SimConfig& config, const Population& population,
                                    const SimKeys& keys, const std::vector<FederationResult>& runs,
                                    const std::vector<NamedMethod>& methods,
                                    const std::vector<std::filesystem::path>& run_dirs,
                                    const std::filesystem::path& out);

// The de-identified train data of `site` in a run directory, and who its labels stand for (the
// decrypted one-time key for PIS; the label itself otherwise).
std::filesystem::path site_store(const std::filesystem::path& run_dir, const std::string& site);

}  // namespace ppreid::sim
