#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/data/dataset.h"
#include "core/data/loader.h"
#include "core/distributed/communicator.h"
#include "core/reid/centroid_protocol.h"
#include "core/reid/checkpoint.h"
#include "core/reid/feature_files.h"
#include "core/reid/model.h"

namespace ppreid::reid {

// Test-time features (BNNeck output, L2-normalized) of every image of one split, in split order,
// with the test transform; the model is put in eval mode and gradients are off.
FeatureSet extract_features(ReidModel& model, const data::Dataset& dataset, data::SplitKind split,
                            const data::TransformOptions& transform,
                            data::EvalLoaderOptions options = {});

// The same for any list of images under `root` (e.g. a chosen subset of a split), in list order.
// With `comm` (collective): each rank extracts a contiguous run of whole batches of the list and
// the features are gathered, so every rank returns exactly what one process computes (the same
// batches go through the same model).
FeatureSet extract_features(ReidModel& model, const std::filesystem::path& root,
                            std::vector<data::ImageRecord> records,
                            const data::TransformOptions& transform,
                            data::EvalLoaderOptions options = {},
                            dist::Communicator* comm = nullptr);

// The test transform a checkpoint's model expects: its input size (info.json), the default
// normalization, no augmentation (the test transform ignores the training-only fields).
data::TransformOptions test_transform(const CheckpointInfo& info);

// Instance and (optionally) centroid retrieval of the model on the dataset's query/gallery:
// {"instance": {...}, "centroid": {..., "protocol": "reference"}} as RetrievalMetrics::to_json()
// (centroid_metrics_json, under `centroid_protocol`). With `comm`, the features are extracted in
// shards and gathered (see above); every rank gets the metrics.
nlohmann::json evaluate_model(ReidModel& model, const data::Dataset& dataset,
                              const data::TransformOptions& transform, const std::string& metric,
                              bool centroids, data::EvalLoaderOptions options = {},
                              dist::Communicator* comm = nullptr,
                              CentroidProtocol centroid_protocol = CentroidProtocol::kReference);

}  // namespace ppreid::reid
