#include "aggregator/tensor_kernels.h"

#include <ATen/Parallel.h>

#include <functional>

namespace ppreid::agg::kernels {
namespace {

constexpr int64_t kGrain = 1 << 15;

bool fast(const torch::Tensor& t) {
  return t.scalar_type() == torch::kFloat32 && t.is_contiguous() && t.device().is_cpu();
}

}  // namespace

double squared_distance(const torch::Tensor& a, const torch::Tensor& b) {
  if (!fast(a) || (b.defined() && !fast(b))) {
    torch::Tensor d = b.defined() ? a.to(torch::kFloat64) - b.to(torch::kFloat64)
                                  : a.to(torch::kFloat64);
    return d.square().sum().item<double>();
  }
  const float* pa = a.data_ptr<float>();
  const float* pb = b.defined() ? b.data_ptr<float>() : nullptr;
  return at::parallel_reduce(
      int64_t{0}, a.numel(), kGrain, 0.0,
      [&](int64_t begin, int64_t end, double) {
        // Four partial sums keep the adds independent (the loop cannot be vectorized without
        // reassociating the sum, which the compiler may not do on its own).
        double s[4] = {0, 0, 0, 0};
        int64_t j = begin;
        for (; j + 4 <= end; j += 4) {
          for (int k = 0; k < 4; ++k) {
            double d = static_cast<double>(pa[j + k]) - (pb ? static_cast<double>(pb[j + k]) : 0.0);
            s[k] += d * d;
          }
        }
        for (; j < end; ++j) {
          double d = static_cast<double>(pa[j]) - (pb ? static_cast<double>(pb[j]) : 0.0);
          s[0] += d * d;
        }
        return (s[0] + s[1]) + (s[2] + s[3]);
      },
      std::plus<double>());
}

void accumulate(torch::Tensor& acc, const torch::Tensor& x, double weight,
                const torch::Tensor& base) {
  TORCH_CHECK(acc.scalar_type() == torch::kFloat64 && acc.is_contiguous() &&
              acc.numel() == x.numel());
  if (!fast(x) || (base.defined() && !fast(base))) {
    torch::Tensor value = x.to(torch::kFloat64);
    if (base.defined()) value = value + base.to(torch::kFloat64);
    acc.add_(value.view(acc.sizes()), weight);
    return;
  }
  double* out = acc.data_ptr<double>();
  const float* px = x.data_ptr<float>();
  if (base.defined()) {
    const float* pb = base.data_ptr<float>();
    at::parallel_for(0, x.numel(), kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t j = begin; j < end; ++j)
        out[j] += weight * (static_cast<double>(pb[j]) + static_cast<double>(px[j]));
    });
  } else {
    at::parallel_for(0, x.numel(), kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t j = begin; j < end; ++j) out[j] += weight * static_cast<double>(px[j]);
    });
  }
}

torch::Tensor absolute(const torch::Tensor& x, const torch::Tensor& base) {
  if (!base.defined()) return x;
  return (base.to(x.scalar_type()) + x).contiguous();
}

}  // namespace ppreid::agg::kernels
