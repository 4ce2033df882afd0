#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "core/reid/model.h"

namespace ppreid::reid {

// A state_dict file: a pickled dict {name: tensor} in the zip format of Python's torch.save, so
// `torch.load(path)` in Python returns a dict of tensors. Written atomically.
void save_state_dict(const std::filesystem::path& path, const NamedTensors& tensors);

// Reads a file written by save_state_dict (or a plain dict saved by Python's torch.save). Throws
// ppreid::Error naming the file when it is missing, not a torch pickle, or not a dict of tensors.
NamedTensors load_state_dict(const std::filesystem::path& path);

}  // namespace ppreid::reid
