#pragma once

// The one alias the federation layers need from the model, without the model: aggregator and
// wire code include this instead of core/reid/model.h (and its modules).
#include <ATen/core/Tensor.h>

#include <string>
#include <utility>
#include <vector>

namespace ppreid::reid {

// Named tensors: parameters and buffers keyed by their full module path ("backbone.conv1.weight").
using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

}  // namespace ppreid::reid
