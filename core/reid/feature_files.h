#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <vector>

namespace ppreid::reid {

// Features of one split (query or gallery) with their identity and camera labels.
struct FeatureSet {
  torch::Tensor features;  // float32 [N, D]
  std::vector<int> pids, camids;
};

// Reads `pid,camid,f_1,...,f_d` rows (no header; blank lines are ignored; camids are compared
// for equality only, so 0- or 1-based both work). Throws ppreid::Error naming `file:line` for a
// missing or empty file, a row with too few fields, a row whose dimension differs from the first
// one, a non-numeric field, and NaN/Inf features.
FeatureSet read_feature_csv(const std::filesystem::path& path);

// Writes the same format atomically (temporary file + rename), each value in the shortest form
// that reads back to the same float32. Throws ppreid::Error on inconsistent sizes.
void write_feature_csv(const std::filesystem::path& path, const FeatureSet& set);

}  // namespace ppreid::reid
