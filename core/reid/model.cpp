#include "core/reid/model.h"

#include <map>
#include <set>
#include <sstream>

#include "core/util/error.h"

namespace ppreid::reid {
namespace {

constexpr const char* kHeadPrefix = "classifier.";

bool is_head(const std::string& name) { return name.rfind(kHeadPrefix, 0) == 0; }

// At most a handful of entries per list, so that loading a resnet50 state into a resnet18 model
// gives a readable message rather than hundreds of names.
std::string join_limited(const std::vector<std::string>& items) {
  constexpr size_t kShown = 8;
  std::string out;
  for (size_t i = 0; i < items.size() && i < kShown; ++i) out += (i ? ", " : "") + items[i];
  if (items.size() > kShown) out += ", ... (" + std::to_string(items.size() - kShown) + " more)";
  return out;
}

torch::nn::Linear make_classifier(int feature_dim, int num_classes) {
  torch::nn::Linear linear(torch::nn::LinearOptions(feature_dim, num_classes).bias(false));
  // BoT's weights_init_classifier: a near-zero start keeps early logits uniform, so the
  // label-smoothed ID loss does not fight the metric losses in the first iterations.
  torch::NoGradGuard no_grad;
  linear->weight.normal_(0.0, 0.001);
  return linear;
}

}  // namespace

std::string shape_string(const torch::Tensor& t) {
  if (!t.defined()) return "[undefined]";
  std::ostringstream out;
  out << '[';
  for (int64_t d = 0; d < t.dim(); ++d) out << (d ? "," : "") << t.size(d);
  out << ']';
  return out.str();
}

ReidModelImpl::ReidModelImpl(ModelOptions options) : options_(std::move(options)) {
  if (options_.num_classes < 0) {
    throw Error("ReidModel: num_classes is " + std::to_string(options_.num_classes) +
                "; use 0 (no classifier) or the number of training identities");
  }
  backbone_ = register_module("backbone", Backbone(options_.backbone));
  feature_dim_ = backbone_->feature_dim();
  if (options_.neck) {
    neck_ = register_module("neck", SyncableBatchNorm1d(feature_dim_));
    // BNNeck: without a shift the BN output stays centred at the origin, which suits the
    // classifier's hyperplanes through the origin and the cosine distance used at test time.
    torch::NoGradGuard no_grad;
    neck_->weight.fill_(1.0);
    neck_->bias.zero_();
    neck_->bias.set_requires_grad(false);
  }
  if (options_.num_classes > 0) {
    classifier_ =
        register_module("classifier", make_classifier(feature_dim_, options_.num_classes));
  }
}

torch::Tensor ReidModelImpl::pooled(const torch::Tensor& images) {
  if (images.dim() != 4 || images.size(1) != 3) {
    throw Error("ReidModel: expected images [N,3,H,W], got " + shape_string(images) +
                "; convert with tensor::image_to_tensor and stack a batch");
  }
  return backbone_->forward(images).mean({2, 3});
}

ReidOutput ReidModelImpl::forward(torch::Tensor images) {
  ReidOutput out;
  out.global_feat = pooled(images);
  out.bn_feat = neck_ ? neck_->forward(out.global_feat) : out.global_feat;
  if (classifier_) out.logits = classifier_->forward(out.bn_feat);
  return out;
}

torch::Tensor ReidModelImpl::embed(torch::Tensor images) {
  torch::Tensor feat = pooled(images);
  if (neck_) feat = neck_->forward(feat);
  return torch::nn::functional::normalize(
      feat, torch::nn::functional::NormalizeFuncOptions().p(2).dim(1));
}

void ReidModelImpl::reset_classifier(int num_classes) {
  if (num_classes < 0) {
    throw Error("ReidModel::reset_classifier: num_classes is " + std::to_string(num_classes) +
                "; use 0 (remove the classifier) or the number of identities");
  }
  if (classifier_) {
    unregister_module("classifier");
    classifier_ = nullptr;
  }
  options_.num_classes = num_classes;
  if (num_classes > 0) {
    classifier_ = register_module("classifier", make_classifier(feature_dim_, num_classes));
  }
}

NamedTensors ReidModelImpl::collect(bool head) const {
  NamedTensors out;
  for (const auto& item : named_parameters(/*recurse=*/true)) {
    if (is_head(item.key()) == head) out.emplace_back(item.key(), item.value().detach().clone());
  }
  for (const auto& item : named_buffers(/*recurse=*/true)) {
    if (is_head(item.key()) == head) out.emplace_back(item.key(), item.value().detach().clone());
  }
  return out;
}

NamedTensors ReidModelImpl::shared_state() const { return collect(false); }
NamedTensors ReidModelImpl::head_state() const { return collect(true); }

NamedTensors ReidModelImpl::shared_parameters() const {
  NamedTensors out;
  for (const auto& item : named_parameters(/*recurse=*/true)) {
    if (!is_head(item.key())) out.emplace_back(item.key(), item.value());
  }
  return out;
}

void ReidModelImpl::load(const NamedTensors& state, bool head) {
  std::map<std::string, torch::Tensor> live;
  for (const auto& item : named_parameters(true)) {
    if (is_head(item.key()) == head) live.emplace(item.key(), item.value());
  }
  for (const auto& item : named_buffers(true)) {
    if (is_head(item.key()) == head) live.emplace(item.key(), item.value());
  }

  std::vector<std::string> unexpected, mismatched, duplicated, missing;
  std::set<std::string> seen;
  for (const auto& [name, value] : state) {
    if (!seen.insert(name).second) {
      duplicated.push_back(name);
      continue;
    }
    auto it = live.find(name);
    if (it == live.end()) {
      unexpected.push_back(name);
    } else if (!value.defined() || value.sizes() != it->second.sizes()) {
      mismatched.push_back(name + " " + shape_string(value) + " vs " + shape_string(it->second));
    }
  }
  for (const auto& [name, value] : live) {
    if (!seen.count(name)) missing.push_back(name);
  }

  const char* what = head ? "load_head_state" : "load_shared_state";
  if (!unexpected.empty() || !mismatched.empty() || !duplicated.empty() || !missing.empty()) {
    std::string problems;
    auto add = [&](const char* label, const std::vector<std::string>& names) {
      if (names.empty()) return;
      problems += (problems.empty() ? "" : "; ") + std::string(label) + ": " + join_limited(names);
    };
    add("missing", missing);
    add("unexpected", unexpected);
    add("shape mismatch", mismatched);
    add("duplicated", duplicated);
    throw Error(std::string("ReidModel::") + what + ": the state does not fit this " +
                options_.backbone.arch + " model (" + problems + "; shapes are given vs model); " +
                "nothing was loaded. Load a " +
                "state saved from a model with the same arch, neck setting" +
                (head ? " and number of classes" : "") + ".");
  }

  torch::NoGradGuard no_grad;
  for (const auto& [name, value] : state) live.at(name).copy_(value);
}

void ReidModelImpl::load_shared_state(const NamedTensors& state) { load(state, false); }
void ReidModelImpl::load_head_state(const NamedTensors& state) { load(state, true); }

}  // namespace ppreid::reid
