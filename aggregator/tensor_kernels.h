#pragma once

#include <torch/torch.h>

// Element-wise loops the strategies and the validator run over whole models. float32 tensors
// (the models' dtype) take hand-written loops that read each input once and allocate nothing;
// other dtypes fall back to LibTorch operators.
namespace ppreid::agg::kernels {

// sum_j (a_j - b_j)^2 accumulated in float64; `b` may be undefined (then sum_j a_j^2). NaN or
// Inf in the inputs makes the result non-finite. Same shapes required.
double squared_distance(const torch::Tensor& a, const torch::Tensor& b);

// acc += weight * x, or weight * (base + x) when `base` is defined (a delta on top of the global
// weights). `acc` is a contiguous float64 tensor of x's shape.
void accumulate(torch::Tensor& acc, const torch::Tensor& x, double weight,
                const torch::Tensor& base);

// The value a site's tensor takes: x itself, or base + x (in x's dtype) for a delta.
torch::Tensor absolute(const torch::Tensor& x, const torch::Tensor& base);

}  // namespace ppreid::agg::kernels
