#include "core/reid/losses.h"

#include <limits>
#include <map>
#include <sstream>
#include <string>

#include "core/util/error.h"

namespace ppreid::reid {
namespace {

std::string shape_of(const torch::Tensor& t) {
  std::ostringstream out;
  out << t.sizes();
  return out.str();
}

// Labels as a contiguous int64 vector [N], checked against the batch size.
torch::Tensor checked_labels(const char* where, const torch::Tensor& labels, int64_t n) {
  if (!labels.defined() || labels.dim() != 1 || labels.size(0) != n) {
    throw Error(std::string(where) + ": labels must be a 1-D tensor of " + std::to_string(n) +
                " entries (one per feature row), got " +
                (labels.defined() ? shape_of(labels) : std::string("undefined")));
  }
  if (labels.is_floating_point() || labels.is_complex()) {
    throw Error(std::string(where) + ": labels must be integer class ids, got " +
                std::string(c10::toString(labels.scalar_type())) + "; pass a torch::kLong tensor");
  }
  return labels.to(torch::kLong).contiguous();
}

void check_features(const char* where, const torch::Tensor& features) {
  if (!features.defined() || features.dim() != 2 || features.size(0) == 0) {
    throw Error(std::string(where) + ": features must be a non-empty [N,D] tensor, got " +
                (features.defined() ? shape_of(features) : std::string("undefined")));
  }
}

}  // namespace

torch::Tensor euclidean_distances(const torch::Tensor& x, const torch::Tensor& y) {
  // Works for batched [..., N, D] x [..., M, D] as well, which the centroid loss uses.
  torch::Tensor xx = x.pow(2).sum(-1, /*keepdim=*/true);
  torch::Tensor yy = y.pow(2).sum(-1, /*keepdim=*/true).transpose(-1, -2);
  torch::Tensor d2 = xx + yy - 2 * torch::matmul(x, y.transpose(-1, -2));
  return d2.clamp_min(1e-12).sqrt();
}

torch::Tensor cross_entropy_label_smooth(const torch::Tensor& logits, const torch::Tensor& targets,
                                         double epsilon) {
  constexpr const char* kWhere = "cross_entropy_label_smooth";
  check_features(kWhere, logits);
  if (!(epsilon >= 0.0 && epsilon < 1.0)) {
    throw Error(std::string(kWhere) + ": epsilon " + std::to_string(epsilon) +
                " is outside [0, 1); BoT uses 0.1");
  }
  const int64_t num_classes = logits.size(1);
  torch::Tensor t = checked_labels(kWhere, targets, logits.size(0));
  const int64_t lo = t.min().item<int64_t>(), hi = t.max().item<int64_t>();
  if (lo < 0 || hi >= num_classes) {
    throw Error(std::string(kWhere) + ": target " + std::to_string(lo < 0 ? lo : hi) +
                " is outside [0, " + std::to_string(num_classes) +
                "); the classifier must have one output per training identity (relabel the "
                "identities to 0..C-1)");
  }
  torch::Tensor log_probs = torch::log_softmax(logits, 1);
  torch::Tensor q =
      torch::zeros_like(log_probs).scatter_(1, t.to(logits.device()).unsqueeze(1), 1.0);
  q = q * (1.0 - epsilon) + epsilon / static_cast<double>(num_classes);
  return (-q * log_probs).sum(1).mean();
}

TripletResult batch_hard_triplet(const torch::Tensor& features, const torch::Tensor& labels,
                                 double margin) {
  constexpr const char* kWhere = "batch_hard_triplet";
  check_features(kWhere, features);
  const int64_t n = features.size(0);
  torch::Tensor l = checked_labels(kWhere, labels, n).to(features.device());

  torch::Tensor same = l.unsqueeze(0) == l.unsqueeze(1);
  torch::Tensor self = torch::eye(n, same.options());
  torch::Tensor positive = same & ~self;
  torch::Tensor negative = ~same;
  if (!positive.any(1).all().item<bool>() || !negative.any(1).all().item<bool>()) {
    const bool single_image = !positive.any(1).all().item<bool>();
    throw Error(std::string(kWhere) + ": " +
                (single_image ? "batch has an identity with a single image; batch-hard triplet "
                                "needs K >= 2 images per identity"
                              : "batch has a single identity; batch-hard triplet needs P >= 2 "
                                "identities") +
                " (use the P x K sampler)");
  }

  torch::Tensor dist = euclidean_distances(features, features);
  const double inf = std::numeric_limits<double>::infinity();
  TripletResult r;
  // masked_fill keeps the gradient only on the selected (hardest) pairs, as BoT's max/min do.
  r.hardest_positive = std::get<0>(dist.masked_fill(~positive, -inf).max(1));
  r.hardest_negative = std::get<0>(dist.masked_fill(~negative, inf).min(1));
  r.loss = torch::relu(r.hardest_positive - r.hardest_negative + margin).mean();
  return r;
}

CenterLossImpl::CenterLossImpl(int num_classes, int feature_dim)
    : num_classes_(num_classes), feature_dim_(feature_dim) {
  if (num_classes < 1 || feature_dim < 1) {
    throw Error(
        "CenterLoss: num_classes " + std::to_string(num_classes) + " and feature_dim " +
        std::to_string(feature_dim) +
        " must be positive; pass the training identity count and the model's feature_dim()");
  }
  centers = register_parameter("centers", torch::randn({num_classes, feature_dim}));
}

torch::Tensor CenterLossImpl::forward(const torch::Tensor& features, const torch::Tensor& labels) {
  constexpr const char* kWhere = "CenterLoss";
  check_features(kWhere, features);
  if (features.size(1) != feature_dim_) {
    throw Error(std::string(kWhere) + ": features have dimension " +
                std::to_string(features.size(1)) + " but the centres " +
                std::to_string(feature_dim_) + "; build CenterLoss with the model's feature_dim()");
  }
  torch::Tensor l = checked_labels(kWhere, labels, features.size(0));
  const int64_t lo = l.min().item<int64_t>(), hi = l.max().item<int64_t>();
  if (lo < 0 || hi >= num_classes_) {
    throw Error(std::string(kWhere) + ": label " + std::to_string(lo < 0 ? lo : hi) +
                " is outside [0, " + std::to_string(num_classes_) +
                "); build CenterLoss with the number of training identities");
  }
  torch::Tensor own = centers.index_select(0, l.to(centers.device()));
  return (features - own).pow(2).sum(1).clamp(1e-12, 1e12).mean();
}

std::vector<CentroidSplit> make_centroid_splits(const torch::Tensor& labels) {
  constexpr const char* kWhere = "centroid_triplet_loss";
  if (!labels.defined() || labels.dim() != 1) {
    throw Error(std::string(kWhere) + ": labels must be a 1-D tensor");
  }
  torch::Tensor l = checked_labels(kWhere, labels, labels.size(0)).cpu();
  const int64_t* v = l.data_ptr<int64_t>();

  std::vector<int64_t> order;  // identities by first appearance
  std::map<int64_t, std::vector<int64_t>> images;
  for (int64_t i = 0; i < l.size(0); ++i) {
    auto& list = images[v[i]];
    if (list.empty()) order.push_back(v[i]);
    list.push_back(i);
  }
  const int64_t p = static_cast<int64_t>(order.size());
  const int64_t k = p ? static_cast<int64_t>(images[order[0]].size()) : 0;
  for (int64_t id : order) {
    const int64_t count = static_cast<int64_t>(images[id].size());
    if (count != k) {
      throw Error(std::string(kWhere) + ": identity " + std::to_string(id) + " has " +
                  std::to_string(count) + " images but identity " + std::to_string(order[0]) +
                  " has " + std::to_string(k) +
                  "; the centroid loss needs P identities with the same K images each (use the "
                  "P x K sampler)");
    }
  }
  if (k < 2) {
    throw Error(std::string(kWhere) + ": identities have K = " + std::to_string(k) +
                " image(s) each; a centroid needs K >= 2 (query plus at least one other image)");
  }
  if (p < 2) {
    throw Error(std::string(kWhere) +
                ": batch has a single identity; the centroid loss needs P >= 2 identities for a "
                "negative centroid");
  }

  std::vector<CentroidSplit> splits(static_cast<size_t>(k));
  for (int64_t s = 0; s < k; ++s) {
    CentroidSplit& split = splits[static_cast<size_t>(s)];
    split.labels = order;
    for (int64_t id : order) {
      const auto& list = images[id];
      split.query.push_back(list[static_cast<size_t>(s)]);
      std::vector<int64_t> members;
      for (int64_t j = 0; j < k; ++j) {
        if (j != s) members.push_back(list[static_cast<size_t>(j)]);
      }
      split.members.push_back(std::move(members));
    }
  }
  return splits;
}

torch::Tensor centroid_triplet_loss(const torch::Tensor& features, const torch::Tensor& labels,
                                    double margin) {
  constexpr const char* kWhere = "centroid_triplet_loss";
  check_features(kWhere, features);
  checked_labels(kWhere, labels, features.size(0));
  const std::vector<CentroidSplit> splits = make_centroid_splits(labels);
  const int64_t k = static_cast<int64_t>(splits.size());
  const int64_t p = static_cast<int64_t>(splits[0].query.size());
  const int64_t d = features.size(1);

  std::vector<int64_t> query_index, member_index;
  query_index.reserve(static_cast<size_t>(k * p));
  member_index.reserve(static_cast<size_t>(k * p * (k - 1)));
  for (const auto& split : splits) {
    query_index.insert(query_index.end(), split.query.begin(), split.query.end());
    for (const auto& members : split.members) {
      member_index.insert(member_index.end(), members.begin(), members.end());
    }
  }
  auto as_tensor = [&](const std::vector<int64_t>& index) {
    return torch::tensor(index, torch::kLong).to(features.device());
  };
  // All K splits at once: queries [K,P,D], centroids [K,P,D], distances [K,P,P].
  torch::Tensor queries = features.index_select(0, as_tensor(query_index)).view({k, p, d});
  torch::Tensor centroids =
      features.index_select(0, as_tensor(member_index)).view({k, p, k - 1, d}).mean(2);
  torch::Tensor dist = euclidean_distances(queries, centroids);

  torch::Tensor own =
      torch::eye(p, torch::TensorOptions().dtype(torch::kBool).device(features.device()));
  torch::Tensor d_pos = dist.diagonal(0, 1, 2);
  torch::Tensor d_neg =
      std::get<0>(dist.masked_fill(own, std::numeric_limits<double>::infinity()).min(2));
  return torch::relu(d_pos - d_neg + margin).mean();
}

LossParts combined_loss(const ReidOutput& out, const torch::Tensor& labels,
                        const LossWeights& weights, CenterLoss* center, double label_smoothing,
                        double margin) {
  LossParts parts;
  auto add = [&](const torch::Tensor& value, double weight, double& slot) {
    slot = value.item<double>();
    torch::Tensor weighted = value * weight;
    parts.total = parts.total.defined() ? parts.total + weighted : weighted;
  };
  if (weights.use_id) {
    if (!out.logits.defined()) {
      throw Error(
          "combined_loss: the ID loss is enabled but the model has no classifier; build "
          "the model with num_classes > 0 or set LossWeights::use_id = false");
    }
    add(cross_entropy_label_smooth(out.logits, labels, label_smoothing), weights.id, parts.id);
  }
  if (weights.use_triplet) {
    add(batch_hard_triplet(out.global_feat, labels, margin).loss, weights.triplet, parts.triplet);
  }
  if (weights.use_center) {
    if (center == nullptr || center->is_empty()) {
      throw Error(
          "combined_loss: the center loss is enabled but no CenterLoss was given; pass "
          "one or set LossWeights::use_center = false");
    }
    add((*center)->forward(out.global_feat, labels), weights.center, parts.center);
  }
  if (weights.use_centroid) {
    add(centroid_triplet_loss(out.global_feat, labels, margin), weights.centroid, parts.centroid);
  }
  if (!parts.total.defined()) {
    throw Error(
        "combined_loss: every loss is disabled in LossWeights; enable at least one of "
        "use_id, use_triplet, use_center, use_centroid");
  }
  return parts;
}

}  // namespace ppreid::reid
