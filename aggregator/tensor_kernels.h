#pragma once

#include <torch/torch.h>

// Element-wise loops the strategies and the validator run over whole models. float32 tensors
// (the models' dtype) take hand-written loops that read each input once and allocate nothing;
// other dtypes fall back to LibTorch operators.
namespace ppreid::agg::kernels {

// sum_j (a_j - b_j)^2 accumulated in float64; `b` may be undefined (then sum_j a_j^2). NaN or
// Inf in the inputs makes the result non-finite. Same shapes required.
double squared_distance(const torch::Tensor& a, const torch::Tensor& b);

// acc = wx * x + wy * y (assign) or acc += wx * x + wy * y, with `y` optional (undefined).
// `acc` is a contiguous float64 tensor with x's (and y's) number of elements. Folding two updates
// in one pass reads and writes the float64 sum once for both.
void fold(torch::Tensor& acc, bool assign, const torch::Tensor& x, double wx,
          const torch::Tensor& y = {}, double wy = 0.0);

// acc * scale in `dtype` (one pass for float32, no float64 temporary).
torch::Tensor scaled(const torch::Tensor& acc, double scale, c10::ScalarType dtype);

// The value a site's tensor takes: x itself, or base + x (in x's dtype) for a delta.
torch::Tensor absolute(const torch::Tensor& x, const torch::Tensor& base);

}  // namespace ppreid::agg::kernels
