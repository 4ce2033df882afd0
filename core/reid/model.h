#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "core/reid/backbone.h"
#include "core/reid/named_tensors.h"
#include "core/reid/batch_norm.h"

namespace ppreid::reid {

struct ModelOptions {
  BackboneOptions backbone;
  int num_classes = 0;  // 0: no classifier (feature extractor only, or a head added later)
  bool neck = true;     // BNNeck; false feeds global_feat to the classifier directly
};

struct ReidOutput {
  torch::Tensor global_feat;  // [N,D] after GAP, before BN: triplet, center and centroid losses
  torch::Tensor bn_feat;      // [N,D] after BNNeck (equals global_feat without a neck)
  torch::Tensor logits;       // [N,num_classes]; undefined when num_classes == 0
};


// A tensor's shape for messages: "[2,3]" ("[undefined]" for an undefined tensor).
std::string shape_string(const torch::Tensor& t);

// The BoT strong baseline (Luo et al. 2019): ResNet backbone with last stride 1, global average
// pooling, BNNeck and a bias-free linear classifier. Parameters are named backbone.*, neck.* and
// classifier.*. In federated training the backbone and neck are shared between sites while each
// site keeps its classifier (its own identities): shared_state()/head_state() split them.
struct ReidModelImpl : torch::nn::Module {
  explicit ReidModelImpl(ModelOptions options);

  ReidOutput forward(torch::Tensor images);
  // Test-time feature: bn_feat, L2-normalised per row. The caller sets eval() and holds a
  // torch::NoGradGuard; the classifier is not evaluated.
  torch::Tensor embed(torch::Tensor images);

  // Replaces the classifier by a fresh one (normal, std 0.001) for a new set of identities;
  // 0 removes it. Optimizers holding the old classifier's parameters must be rebuilt.
  void reset_classifier(int num_classes);

  // Snapshots (detached clones) of backbone.* and neck.* parameters and buffers, parameters
  // first, each in registration order.
  NamedTensors shared_state() const;
  // Snapshot of classifier.* (empty without a classifier).
  NamedTensors head_state() const;
  // The live (not cloned) parameters of backbone.* and neck.*, in registration order: what a
  // site trains and FedProx's proximal term (proximal.h) pulls towards the global weights.
  // Buffers (BatchNorm statistics) are not parameters and are not included.
  NamedTensors shared_parameters() const;
  // Copy values in place (no autograd, optimizer references stay valid). The names must be
  // exactly those of shared_state()/head_state() with the same shapes; otherwise nothing is
  // copied and ppreid::Error lists every missing, unexpected and shape-mismatched name.
  void load_shared_state(const NamedTensors& state);
  void load_head_state(const NamedTensors& state);

  int feature_dim() const { return feature_dim_; }
  int num_classes() const { return options_.num_classes; }
  const ModelOptions& options() const { return options_; }

  Backbone backbone() const { return backbone_; }
  // Undefined holder (nullptr) when options().neck is false.
  SyncableBatchNorm neck() const { return neck_; }
  // Undefined holder (nullptr) when num_classes() is 0.
  torch::nn::Linear classifier() const { return classifier_; }

 private:
  torch::Tensor pooled(const torch::Tensor& images);
  NamedTensors collect(bool head) const;
  void load(const NamedTensors& state, bool head);

  ModelOptions options_;
  int feature_dim_ = 0;
  Backbone backbone_{nullptr};
  SyncableBatchNorm neck_{nullptr};
  torch::nn::Linear classifier_{nullptr};
};
TORCH_MODULE(ReidModel);

}  // namespace ppreid::reid
