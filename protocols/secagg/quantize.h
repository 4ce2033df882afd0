#pragma once

// Turning a site's weighted update into words that can be summed mod 2^bits, and the sum back
// into floats. The arithmetic is Flower's SecAgg+ (flwr.common.secure_aggregation.quantization
// and secaggplus_mod): the weight ratio r = min(1, samples / max_weight) is quantized to
// q_r = round(r Q), the values are multiplied by q_r / Q, clipped to [-c, c], shifted by c and
// scaled by Q / 2c, then rounded stochastically (up with probability equal to the fraction),
// so that every word is an unbiased estimate. The sum of m sites dequantizes as
// S 2c / Q - m c, and dividing by sum(q_r) / Q gives the weighted mean.

#include <cstdint>
#include <span>

#include "protocols/secagg/crypto.h"
#include "protocols/secagg/params.h"

namespace ppreid::secagg {

// The quantized weight ratio q_r of a site with `samples` training images.
std::uint64_t quantized_weight(double samples, const Params& params);

// words[i] = SR((clip(values[i] * q_r / Q, -c, c) + c) * Q / 2c) for i < values.size().
// Randomness for the rounding comes from an AES-CTR stream keyed by `rounding_seed` (fresh
// from the CSPRNG for real use).
void quantize(std::span<const float> values, std::uint64_t q_weight, const Params& params,
              const Secret32& rounding_seed, std::span<std::uint32_t> words);
void quantize(std::span<const float> values, std::uint64_t q_weight, const Params& params,
              const Secret32& rounding_seed, std::span<std::uint64_t> words);

// sum(q_r x) / sum(q_r) from the unmasked sum of `sites` sites' words: the weighted mean.
double dequantize_mean(std::uint64_t sum_word, std::size_t sites, std::uint64_t weight_sum,
                       const Params& params);

// The largest error of one site's word after dequantization: one quantization step, 2c / Q.
double quantization_step(const Params& params);

}  // namespace ppreid::secagg
