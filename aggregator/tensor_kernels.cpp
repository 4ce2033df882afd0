#include "aggregator/tensor_kernels.h"

#include <vector>

#include "aggregator/parallel.h"

namespace ppreid::agg::kernels {
namespace {

// Below this many elements per thread, starting a thread costs more than it saves.
constexpr int64_t kGrain = 1 << 18;

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
  std::vector<double> partial(static_cast<std::size_t>(std::max(1, at::get_num_threads())), 0.0);
  const int parts = parallel_parts(a.numel(), kGrain, [&](int64_t begin, int64_t end, int part) {
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
    partial[part] = (s[0] + s[1]) + (s[2] + s[3]);
  });
  double sum = 0;
  for (int p = 0; p < parts; ++p) sum += partial[p];
  return sum;
}

namespace {

template <bool kAssign, bool kTwo>
void fold_loop(double* out, const float* px, double wx, const float* py, double wy, int64_t n) {
  parallel_parts(n, kGrain, [&](int64_t begin, int64_t end, int) {
    for (int64_t j = begin; j < end; ++j) {
      double v = wx * static_cast<double>(px[j]);
      if constexpr (kTwo) v += wy * static_cast<double>(py[j]);
      if constexpr (kAssign) {
        out[j] = v;
      } else {
        out[j] += v;
      }
    }
  });
}

}  // namespace

void fold(torch::Tensor& acc, bool assign, const torch::Tensor& x, double wx,
          const torch::Tensor& y, double wy) {
  TORCH_CHECK(acc.scalar_type() == torch::kFloat64 && acc.is_contiguous() &&
              acc.numel() == x.numel() && (!y.defined() || y.numel() == x.numel()));
  if (!fast(x) || (y.defined() && !fast(y))) {
    torch::Tensor value = x.to(torch::kFloat64).mul(wx);
    if (y.defined()) value.add_(y.to(torch::kFloat64), wy);
    value = value.view(acc.sizes());
    assign ? acc.copy_(value) : acc.add_(value);
    return;
  }
  double* out = acc.data_ptr<double>();
  const float* px = x.data_ptr<float>();
  const float* py = y.defined() ? y.data_ptr<float>() : nullptr;
  const int64_t n = x.numel();
  if (assign) {
    py ? fold_loop<true, true>(out, px, wx, py, wy, n) : fold_loop<true, false>(out, px, wx, py, wy, n);
  } else {
    py ? fold_loop<false, true>(out, px, wx, py, wy, n) : fold_loop<false, false>(out, px, wx, py, wy, n);
  }
}

torch::Tensor scaled(const torch::Tensor& acc, double scale, c10::ScalarType dtype) {
  if (dtype != torch::kFloat32 || !acc.is_contiguous()) return (acc * scale).to(dtype);
  torch::Tensor out = torch::empty(acc.sizes(), acc.options().dtype(torch::kFloat32));
  const double* in = acc.data_ptr<double>();
  float* o = out.data_ptr<float>();
  parallel_parts(acc.numel(), kGrain, [&](int64_t begin, int64_t end, int) {
    for (int64_t j = begin; j < end; ++j) o[j] = static_cast<float>(in[j] * scale);
  });
  return out;
}

torch::Tensor absolute(const torch::Tensor& x, const torch::Tensor& base) {
  if (!base.defined()) return x;
  return (base.to(x.scalar_type()) + x).contiguous();
}

}  // namespace ppreid::agg::kernels
