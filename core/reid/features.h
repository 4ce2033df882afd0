#pragma once

#include <nlohmann/json.hpp>

#include "core/data/dataset.h"
#include "core/data/loader.h"
#include "core/reid/feature_files.h"
#include "core/reid/model.h"

namespace ppreid::reid {

// Test-time features (BNNeck output, L2-normalized) of every image of one split, in split order,
// with the test transform; the model is put in eval mode and gradients are off.
FeatureSet extract_features(ReidModel& model, const data::Dataset& dataset, data::SplitKind split,
                            const data::TransformOptions& transform,
                            data::EvalLoaderOptions options = {});

// Instance and (optionally) centroid retrieval of the model on the dataset's query/gallery:
// {"instance": {...}, "centroid": {...}} as RetrievalMetrics::to_json().
nlohmann::json evaluate_model(ReidModel& model, const data::Dataset& dataset,
                              const data::TransformOptions& transform, const std::string& metric,
                              bool centroids, data::EvalLoaderOptions options = {});

}  // namespace ppreid::reid
