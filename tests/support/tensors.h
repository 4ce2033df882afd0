#pragma once

#include <torch/torch.h>

#include <vector>

namespace ppreid::testing {

// A float64 [rows, cols] tensor written out row by row, for hand-made distance matrices and
// feature sets in tests.
inline torch::Tensor matrix(const std::vector<std::vector<double>>& rows) {
  std::vector<double> flat;
  for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
  return torch::tensor(flat, torch::kFloat64)
      .reshape({static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows[0].size())});
}

}  // namespace ppreid::testing
