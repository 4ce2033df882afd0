#include "core/reid/distance.h"

#include <algorithm>
#include <exception>
#include <thread>
#include <vector>

#include "core/util/error.h"

namespace ppreid::reid {
namespace {

void check_matrix(const torch::Tensor& t, std::string_view what) {
  if (!t.defined() || t.dim() != 2)
    throw Error(
        std::string(what) + " features must be a 2-D tensor [N, D], got " +
        (t.defined() ? std::to_string(t.dim()) + "-D" : std::string("an undefined tensor")) +
        "; stack one feature vector per row");
  if (t.size(0) == 0 || t.size(1) == 0)
    throw Error(std::string(what) + " features are empty (" + std::to_string(t.size(0)) + "x" +
                std::to_string(t.size(1)) + "); extract at least one non-empty feature vector");
  if (!t.is_floating_point())
    throw Error(std::string(what) + " features must be floating point, got " +
                std::string(c10::toString(t.scalar_type())));
}

// Mirrors F.normalize(x, p=2, dim=1): dividing by max(|x|, eps) keeps zero rows at zero.
torch::Tensor l2_normalize_rows(const torch::Tensor& x) {
  return x / x.norm(2, 1, true).clamp_min(1e-12);
}

}  // namespace

Metric parse_metric(std::string_view name) {
  if (name == "euclidean") return Metric::kEuclidean;
  if (name == "cosine") return Metric::kCosine;
  throw UsageError("unknown distance metric '" + std::string(name) +
                   "'; use 'euclidean' or 'cosine'");
}

std::string to_string(Metric metric) {
  return metric == Metric::kEuclidean ? "euclidean" : "cosine";
}

void check_finite_rows(const torch::Tensor& features, std::string_view what) {
  torch::Tensor finite = torch::isfinite(features).all(1);
  if (finite.all().item<bool>()) return;
  const int64_t row = torch::nonzero(finite.logical_not())[0][0].item<int64_t>();
  const bool nan = torch::isnan(features[row]).any().item<bool>();
  throw Error(std::string(what) + " feature " + std::to_string(row) + " contains " +
              (nan ? "NaN" : "Inf") +
              " (rows are 0-based); check the model output or the feature file it came from");
}

torch::Tensor pairwise_distance(const torch::Tensor& query, const torch::Tensor& gallery,
                                Metric metric) {
  check_matrix(query, "query");
  check_matrix(gallery, "gallery");
  if (query.size(1) != gallery.size(1))
    throw Error("query features have dimension " + std::to_string(query.size(1)) +
                " but gallery features have " + std::to_string(gallery.size(1)) +
                "; extract both with the same model");
  check_finite_rows(query, "query");
  check_finite_rows(gallery, "gallery");

  torch::NoGradGuard no_grad;
  torch::Tensor q = query.to(torch::kCPU, torch::kFloat64).contiguous();
  torch::Tensor g = gallery.to(torch::kCPU, torch::kFloat64).contiguous();
  torch::Tensor out = torch::empty({q.size(0), g.size(0)}, torch::kFloat64);
  if (metric == Metric::kCosine) {
    torch::Tensor qn = l2_normalize_rows(q), gn_t = l2_normalize_rows(g).t();
    parallel_row_blocks(q.size(0), 32, [&](int64_t begin, int64_t end) {
      torch::NoGradGuard guard;  // grad mode is thread-local
      torch::Tensor block = out.slice(0, begin, end);
      torch::mm_out(block, qn.slice(0, begin, end), gn_t);
      block.neg_().add_(1.0);
    });
    return out;
  }
  torch::Tensor q2 = q.square().sum(1, true);         // [Q,1]
  torch::Tensor g2 = g.square().sum(1).unsqueeze(0);  // [1,G]
  torch::Tensor g_t = g.t();
  parallel_row_blocks(q.size(0), 32, [&](int64_t begin, int64_t end) {
    torch::NoGradGuard guard;
    torch::Tensor block = out.slice(0, begin, end);
    // addmm computes q2 + g2 - 2 q.g in one pass over the output; the clamp removes the small
    // negative values cancellation leaves for (near-)identical vectors.
    torch::addmm_out(block, q2.slice(0, begin, end) + g2, q.slice(0, begin, end), g_t,
                     /*beta=*/1.0, /*alpha=*/-2.0);
    block.clamp_min_(0.0);
  });
  return out;
}

void parallel_row_blocks(int64_t rows, int64_t min_rows,
                         const std::function<void(int64_t begin, int64_t end)>& f) {
  if (rows <= 0) return;
  const int64_t threads = std::clamp<int64_t>(
      std::min<int64_t>(torch::get_num_threads(), rows / std::max<int64_t>(min_rows, 1)), 1, rows);
  const int64_t chunk = (rows + threads - 1) / threads;
  std::vector<std::exception_ptr> errors(threads);
  auto run = [&](int64_t t) {
    try {
      const int64_t begin = t * chunk, end = std::min(rows, begin + chunk);
      if (begin < end) f(begin, end);
    } catch (...) {
      errors[t] = std::current_exception();
    }
  };
  std::vector<std::thread> workers;
  for (int64_t t = 1; t < threads; ++t) workers.emplace_back(run, t);
  run(0);
  for (std::thread& w : workers) w.join();
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace ppreid::reid
