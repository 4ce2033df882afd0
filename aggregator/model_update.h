#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "core/reid/named_tensors.h"

namespace ppreid::agg {

using reid::NamedTensors;

// What a site's Update carries for the shared part of the model (backbone + BNNeck).
enum class UpdateKind {
  kWeights,  // the site's weights after local training
  kDelta,    // the site's weights minus the global weights of the round's Task
};
std::string_view to_string(UpdateKind kind);  // "weights" | "delta"

struct ModelUpdate {
  std::string site;
  std::int64_t round = 0;    // the round of the Task it answers
  std::int64_t samples = 0;  // training images the site used (FedAvg weight)
  UpdateKind kind = UpdateKind::kWeights;
  // Named like the global model's tensors (any order until UpdateValidator::admit puts them in
  // the global model's order, which the strategies rely on).
  NamedTensors tensors;
  // ||update - global||_2 (of a delta: ||delta||_2), set by UpdateValidator::admit; NaN before.
  double delta_norm = std::numeric_limits<double>::quiet_NaN();
};

// Empty when `actual` has exactly the names of `expected` (in any order, each once) with the
// same shapes and dtypes; otherwise a description of up to `max_listed` differences, e.g.
// "missing 'neck.weight'; 'backbone.conv1.weight' has shape [8,3,3,3], expected [16,3,3,3]".
std::string structure_difference(const NamedTensors& expected, const NamedTensors& actual,
                                 std::size_t max_listed = 5);

// Throws ppreid::Error unless `update` has the names of `global` in the same order, with the
// same shapes and dtypes: what UpdateValidator::admit guarantees and the strategies rely on.
// `who` names the caller in the message.
void require_aligned(const NamedTensors& global, const ModelUpdate& update, std::string_view who);

// BatchNorm running statistics (NAME.running_mean, NAME.running_var): averaged like weights by
// every strategy, but never moved by a server optimizer (FedAdam/FedYogi), which could make a
// variance negative.
bool is_batchnorm_statistic(std::string_view name);

// Integer tensors (BatchNorm's num_batches_tracked) are counters, not weights: every strategy
// gives them the maximum over the round's updates (each site counts up from the global value).
bool is_counter(const at::Tensor& tensor);

// Number of bytes the tensors' data take.
std::size_t byte_size(const NamedTensors& tensors);

}  // namespace ppreid::agg
