#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "core/reid/loss_options.h"
#include "core/reid/model.h"

namespace ppreid::reid {

// Every loss returns a scalar tensor differentiable w.r.t. its inputs and throws ppreid::Error
// for inconsistent shapes or batches the loss cannot be defined on.

// Pairwise Euclidean distances [N,M] between rows of x [N,D] and y [M,D], as BoT computes them:
// sqrt(clamp(|x|^2 + |y|^2 - 2 x.y, 1e-12)). The clamp keeps the gradient finite for
// coincident points.
torch::Tensor euclidean_distances(const torch::Tensor& x, const torch::Tensor& y);

// Cross-entropy with label smoothing (BoT / torchreid): q = (1 - eps) * onehot + eps / C,
// loss = mean over the batch of -sum_c q_c * log_softmax(logits)_c. logits [N,C], targets [N]
// integer class indices in [0, C). epsilon = 0 is the plain cross-entropy.
torch::Tensor cross_entropy_label_smooth(const torch::Tensor& logits, const torch::Tensor& targets,
                                         double epsilon = 0.1);

struct TripletResult {
  torch::Tensor loss;
  torch::Tensor hardest_positive;  // [N] distance of each anchor to its farthest positive
  torch::Tensor hardest_negative;  // [N] distance of each anchor to its closest negative
};

// Batch-hard triplet loss (Hermans et al., as in BoT): for each anchor the farthest same-label
// sample (excluding itself) and the closest other-label sample; loss = mean(relu(d_ap - d_an +
// margin)), i.e. MarginRankingLoss(margin). features [N,D], labels [N]. Throws when an identity
// has a single image or the batch has a single identity.
TripletResult batch_hard_triplet(const torch::Tensor& features, const torch::Tensor& labels,
                                 double margin = 0.3);

// Center loss (Wen et al. 2016) in BoT's form: mean over the batch of |f_i - c_{y_i}|^2 (each
// term clamped to [1e-12, 1e12]). `centers` [num_classes, D] starts at randn.
//
// How the trainer must use it (BoT):
//   * total loss += 0.0005 * center_loss(global_feat, labels) (LossWeights::center);
//   * centers get their own optimizer, SGD with lr 0.5, not the model's Adam;
//   * after backward and before that optimizer's step, multiply centers.grad by 1 / 0.0005, so
//     the centres move at the rate lr 0.5 regardless of the weight that scales the loss for the
//     backbone: for (auto& p : center->parameters()) p.mutable_grad().mul_(1.0 / weight);
//   * zero both optimizers' gradients each iteration.
struct CenterLossImpl : torch::nn::Module {
  CenterLossImpl(int num_classes, int feature_dim);
  torch::Tensor forward(const torch::Tensor& features, const torch::Tensor& labels);

  int num_classes() const { return num_classes_; }
  int feature_dim() const { return feature_dim_; }

  torch::Tensor centers;

 private:
  int num_classes_;
  int feature_dim_;
};
TORCH_MODULE(CenterLoss);

// How one split of a P x K batch forms queries and centroids for the centroid triplet loss.
struct CentroidSplit {
  std::vector<std::int64_t> labels;                // [P] identity labels, by first appearance
  std::vector<std::int64_t> query;                 // [P] batch index of each identity's query
  std::vector<std::vector<std::int64_t>> members;  // [P][K-1] batch indices averaged into the
                                                   // identity's centroid (the query excluded)
};

// The K splits of a batch of P identities with K images each, in any order: identities in order
// of first appearance, their images in batch order; split s uses each identity's s-th image as
// query and the other K-1 (in batch order) as its centroid. Throws for K < 2, P < 2 or
// identities with different image counts.
std::vector<CentroidSplit> make_centroid_splits(const torch::Tensor& labels);

// Centroid triplet loss (Wieczorek et al. 2021, "On the Unreasonable Effectiveness of Centroids
// in Image Retrieval"): for each split, each query's positive is the Euclidean distance to its own
// identity's centroid and its negative the distance to the closest other identity's centroid of
// the same split; loss = mean over all P*K queries of relu(d_pos - d_neg + margin).
torch::Tensor centroid_triplet_loss(const torch::Tensor& features, const torch::Tensor& labels,
                                    double margin = 0.3);

struct LossParts {
  torch::Tensor total;  // the weighted sum to backpropagate
  // The unweighted value of each part for logging; 0 for a disabled part.
  double id = 0, triplet = 0, center = 0, centroid = 0;
};

// Sums the enabled parts with their weights: the ID loss (label smoothing `label_smoothing`) on
// out.logits, the batch-hard triplet (margin), center and centroid triplet (margin) losses on
// out.global_feat. `center` may be null only when use_center is false. Throws when no part is
// enabled or an enabled part lacks its input (no logits, no center module).
LossParts combined_loss(const ReidOutput& out, const torch::Tensor& labels,
                        const LossWeights& weights, CenterLoss* center, double label_smoothing,
                        double margin);

}  // namespace ppreid::reid
