#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/reid/centroid_protocol.h"
#include "core/reid/distance.h"

namespace ppreid::reid {

// `ppreid eval --features DIR`: reads DIR/query.csv and DIR/gallery.csv (see feature_files.h),
// evaluates them under the Market-1501 protocol and returns
//   {"instance": RetrievalMetrics::to_json(), "centroid": ... (only if `centroids`)}
// where "centroid" is centroid_metrics_json under `protocol` (default CentroidOptions otherwise:
// normalized, max_rank 50) and names the protocol in its "protocol" field.
// Throws ppreid::Error for missing files, mismatched dimensions or no valid query.
nlohmann::json evaluate_feature_dir(const std::filesystem::path& dir, Metric metric,
                                    bool centroids,
                                    CentroidProtocol protocol = CentroidProtocol::kReference);

}  // namespace ppreid::reid
