#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace ppreid::reid {

enum class Metric { kEuclidean, kCosine };

// "euclidean" / "cosine"; anything else is a UsageError that lists the accepted names.
Metric parse_metric(std::string_view name);
std::string to_string(Metric metric);

// Distances between every query row and every gallery row, as float64 [Q, G]:
//  - kEuclidean: SQUARED Euclidean distance |q|^2 + |g|^2 - 2 q.g, clamped at 0. torchreid's
//    `euclidean_squared_distance` returns the same quantity; the ranking equals the one of the
//    plain distance, and skipping the sqrt keeps integer-valued inputs exact.
//  - kCosine: 1 - cos(q, g), rows normalized like torch's F.normalize (norm clamped at 1e-12, so
//    an all-zero vector is at distance 1 from everything).
// Everything is computed in float64 whatever the input dtype, so rankings do not flip on float32
// rounding. Query rows are split over torch::get_num_threads() threads (see parallel_row_blocks).
// Duplicated feature vectors can still differ in the last bit because the BLAS blocks the product;
// the evaluation breaks exact ties by gallery index. Throws ppreid::Error on non-2-D inputs, empty
// inputs, different dimensions, and NaN/Inf values (naming the first offending row, 0-based).
torch::Tensor pairwise_distance(const torch::Tensor& query, const torch::Tensor& gallery,
                                Metric metric);

// Throws ppreid::Error "<what> feature <row> contains NaN|Inf" for the first row (0-based) of a
// 2-D tensor holding a non-finite value. `what` is e.g. "query" or "gallery".
void check_finite_rows(const torch::Tensor& features, std::string_view what);

// Calls f(begin, end) on contiguous blocks of [0, rows), on up to torch::get_num_threads()
// threads with at least `min_rows` rows each, and rethrows the first exception. Plain threads
// because LibTorch's at::parallel_for is header-inlined OpenMP that runs serially in code built
// without -fopenmp (as ours is), and Debian's LibTorch hands GEMM to the single-threaded
// reference BLAS. f must only write state owned by its block.
void parallel_row_blocks(int64_t rows, int64_t min_rows,
                         const std::function<void(int64_t begin, int64_t end)>& f);

}  // namespace ppreid::reid
