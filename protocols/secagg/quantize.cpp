#include "protocols/secagg/quantize.h"

#include <algorithm>
#include <cmath>

namespace ppreid::secagg {
namespace {

template <typename Word>
void quantize_words(std::span<const float> values, std::uint64_t q_weight, const Params& p,
                    const Secret32& seed, std::span<Word> words) {
  const double c = p.clipping_range;
  const double q = static_cast<double>(p.quantization_range);
  const double ratio = static_cast<double>(q_weight) / q;
  const double scale = q / (2 * c);
  constexpr std::size_t kBlock = 4096;
  std::uint32_t random[kBlock];
  KeyStream stream(seed);
  const std::size_t n = std::min(values.size(), words.size());
  for (std::size_t start = 0; start < n; start += kBlock) {
    const std::size_t len = std::min(kBlock, n - start);
    stream.next(reinterpret_cast<std::uint8_t*>(random), len * sizeof(std::uint32_t));
    for (std::size_t j = 0; j < len; ++j) {
      const std::size_t i = start + j;
      const double v = std::clamp(static_cast<double>(values[i]) * ratio, -c, c);
      const double x = (v + c) * scale;  // in [0, Q]
      double whole = std::floor(x);
      // Up with probability frac(x): u < frac(x) for u uniform in [0, 1).
      if (static_cast<double>(random[j]) * 0x1p-32 < x - whole) whole += 1;
      words[i] = static_cast<Word>(whole);
    }
  }
}

}  // namespace

std::uint64_t quantized_weight(double samples, const Params& p) {
  const double ratio = std::clamp(samples / p.max_weight, 0.0, 1.0);
  return static_cast<std::uint64_t>(std::llround(ratio * static_cast<double>(p.quantization_range)));
}

void quantize(std::span<const float> values, std::uint64_t q_weight, const Params& p,
              const Secret32& seed, std::span<std::uint32_t> words) {
  quantize_words(values, q_weight, p, seed, words);
}
void quantize(std::span<const float> values, std::uint64_t q_weight, const Params& p,
              const Secret32& seed, std::span<std::uint64_t> words) {
  quantize_words(values, q_weight, p, seed, words);
}

double dequantize_mean(std::uint64_t sum_word, std::size_t sites, std::uint64_t weight_sum,
                       const Params& p) {
  const double c = p.clipping_range;
  const double q = static_cast<double>(p.quantization_range);
  const double weighted_sum = static_cast<double>(sum_word) * (2 * c / q) - static_cast<double>(sites) * c;
  return weighted_sum / (static_cast<double>(weight_sum) / q);
}

double quantization_step(const Params& p) {
  return 2 * p.clipping_range / static_cast<double>(p.quantization_range);
}

}  // namespace ppreid::secagg
