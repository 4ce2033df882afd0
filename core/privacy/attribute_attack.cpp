#include "core/privacy/attribute_attack.h"

#include <ATen/CPUGeneratorImpl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <numeric>
#include <sstream>
#include <string>
#include <utility>

#include "core/data/transforms.h"
#include "core/reid/backbone.h"
#include "core/util/error.h"
#include "core/util/image.h"
#include "core/util/rng.h"
#include "core/tensor/torch_threads.h"

namespace ppreid::privacy {
namespace {

std::string str(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

// Checks that every code of `codes` (named `what` in errors) lies in [0, classes).
void check_codes(const std::vector<int>& codes, int classes, const char* what) {
  for (std::size_t i = 0; i < codes.size(); ++i)
    if (codes[i] < 0 || codes[i] >= classes)
      throw Error(std::string(what) + " code " + std::to_string(codes[i]) + " at position " +
                  std::to_string(i) + " is outside [0, " + std::to_string(classes) +
                  "); attribute codes must be class indices");
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Attributes and metrics

const std::vector<AttackedAttribute>& attacked_attributes() {
  static const std::vector<AttackedAttribute> kAttributes = {
      {"gender", 2, [](const data::Attributes& a) { return a.gender; }},
      {"hair_length", 2, [](const data::Attributes& a) { return a.hair_length; }},
      {"age_group", 4, [](const data::Attributes& a) { return a.age_group; }},
  };
  return kAttributes;
}

std::vector<std::vector<int>> confusion_matrix(const std::vector<int>& truth,
                                               const std::vector<int>& predicted, int classes) {
  if (classes < 1)
    throw Error("confusion_matrix: the number of classes must be at least 1, got " +
                std::to_string(classes));
  if (truth.size() != predicted.size())
    throw Error("confusion_matrix: " + std::to_string(truth.size()) + " true codes but " +
                std::to_string(predicted.size()) +
                " predicted codes; give one prediction per sample");
  check_codes(truth, classes, "true");
  check_codes(predicted, classes, "predicted");
  std::vector<std::vector<int>> m(classes, std::vector<int>(classes, 0));
  for (std::size_t i = 0; i < truth.size(); ++i) ++m[truth[i]][predicted[i]];
  return m;
}

double macro_f1(const std::vector<int>& truth, const std::vector<int>& predicted, int classes) {
  if (truth.empty() && predicted.empty())
    throw Error("macro_f1: no samples; F1 needs at least one prediction");
  const std::vector<std::vector<int>> m = confusion_matrix(truth, predicted, classes);
  double sum = 0;
  int counted = 0;
  for (int c = 0; c < classes; ++c) {
    long true_count = 0, predicted_count = 0;
    for (int k = 0; k < classes; ++k) {
      true_count += m[c][k];
      predicted_count += m[k][c];
    }
    if (true_count == 0 && predicted_count == 0) continue;  // the class says nothing
    const long tp = m[c][c];
    // F1 = 2 TP / (2 TP + FP + FN) = 2 TP / (true count + predicted count).
    sum += 2.0 * static_cast<double>(tp) / static_cast<double>(true_count + predicted_count);
    ++counted;
  }
  return sum / counted;  // counted >= 1: there is at least one sample
}

nlohmann::json AttributeScores::to_json() const {
  nlohmann::json per = nlohmann::json::object();
  for (const AttributeScore& a : attributes)
    per[a.name] = {{"f1", a.f1}, {"accuracy", a.accuracy}, {"majority_f1", a.majority_f1}};
  return {{"mean_f1", mean_f1},
          {"mean_majority_f1", mean_majority_f1},
          {"samples", attributes.empty() ? 0 : attributes.front().samples},
          {"attributes", per}};
}

AttributeScores score_attributes(const std::vector<std::vector<int>>& truth,
                                 const std::vector<std::vector<int>>& predicted) {
  const std::vector<AttackedAttribute>& attrs = attacked_attributes();
  if (truth.size() != predicted.size())
    throw Error("score_attributes: " + std::to_string(truth.size()) + " true rows but " +
                std::to_string(predicted.size()) +
                " predicted rows; give one prediction per sample");
  if (truth.empty()) throw Error("score_attributes: no samples to score");
  for (std::size_t i = 0; i < truth.size(); ++i)
    if (truth[i].size() != attrs.size() || predicted[i].size() != attrs.size())
      throw Error("score_attributes: sample " + std::to_string(i) + " has " +
                  std::to_string(truth[i].size()) + " true and " +
                  std::to_string(predicted[i].size()) + " predicted codes, expected " +
                  std::to_string(attrs.size()) + " (one per attacked attribute)");
  AttributeScores scores;
  const int n = static_cast<int>(truth.size());
  for (std::size_t a = 0; a < attrs.size(); ++a) {
    std::vector<int> t(n), p(n);
    for (int i = 0; i < n; ++i) {
      t[i] = truth[i][a];
      p[i] = predicted[i][a];
    }
    AttributeScore s;
    s.name = attrs[a].name;
    s.samples = n;
    s.f1 = macro_f1(t, p, attrs[a].classes);  // checks the codes
    int correct = 0;
    for (int i = 0; i < n; ++i) correct += t[i] == p[i];
    s.accuracy = static_cast<double>(correct) / n;
    std::vector<int> count(attrs[a].classes, 0);
    for (int c : t) ++count[c];
    // The most frequent true class; ties go to the smallest code.
    const int majority =
        static_cast<int>(std::max_element(count.begin(), count.end()) - count.begin());
    s.majority_f1 = macro_f1(t, std::vector<int>(n, majority), attrs[a].classes);
    scores.mean_f1 += s.f1 / static_cast<double>(attrs.size());
    scores.mean_majority_f1 += s.majority_f1 / static_cast<double>(attrs.size());
    scores.attributes.push_back(std::move(s));
  }
  return scores;
}

// ---------------------------------------------------------------------------------------------
// The classifier

// Named rather than anonymous: AttributeClassifier::Impl (external linkage) holds one.
namespace attribute_attack_detail {

// One backbone, global average pooling, one linear head per attacked attribute.
struct AttributeNetImpl : torch::nn::Module {
  AttributeNetImpl(const std::string& arch, std::uint64_t seed) {
    reid::BackboneOptions bo;
    bo.arch = arch;
    // A whole-image classification: the fine-grained last stage of BoT buys nothing here.
    bo.last_stride_one = false;
    backbone = register_module("backbone", reid::Backbone(bo));
    for (const AttackedAttribute& a : attacked_attributes())
      heads.push_back(register_module(
          "head_" + a.name, torch::nn::Linear(backbone->feature_dim(), a.classes)));
    initialize(seed);
  }

  // Logits [N, classes] per attacked attribute.
  std::vector<torch::Tensor> forward(const torch::Tensor& x) {
    const torch::Tensor f = torch::adaptive_avg_pool2d(backbone->forward(x), {1, 1}).flatten(1);
    std::vector<torch::Tensor> logits;
    for (auto& head : heads) logits.push_back(head->forward(f));
    return logits;
  }

  // Redraws every weight from a generator of its own (never the global one), with the same
  // distributions LibTorch and the backbone use: He-normal (fan_out) convolutions, BN at identity
  // (already set, deterministic), linear layers uniform in +-1/sqrt(fan_in).
  void initialize(std::uint64_t seed) {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    torch::NoGradGuard no_grad;
    for (auto& m : modules(/*include_self=*/false)) {
      if (auto* conv = m->as<torch::nn::Conv2dImpl>()) {
        const auto& w = conv->weight;
        const double fan_out = static_cast<double>(w.size(0) * w.size(2) * w.size(3));
        conv->weight.normal_(0.0, std::sqrt(2.0 / fan_out), gen);
        if (conv->bias.defined()) conv->bias.zero_();
      } else if (auto* linear = m->as<torch::nn::LinearImpl>()) {
        const double bound = 1.0 / std::sqrt(static_cast<double>(linear->weight.size(1)));
        linear->weight.uniform_(-bound, bound, gen);
        if (linear->bias.defined()) linear->bias.uniform_(-bound, bound, gen);
      }
    }
  }

  reid::Backbone backbone{nullptr};
  std::vector<torch::nn::Linear> heads;  // in attacked_attributes() order
};
TORCH_MODULE(AttributeNet);

}  // namespace attribute_attack_detail
using attribute_attack_detail::AttributeNet;

namespace {

void validate(const AttributeAttackOptions& o) {
  const auto& archs = reid::backbone_archs();
  if (std::find(archs.begin(), archs.end(), o.arch) == archs.end()) {
    std::string list;
    for (const auto& a : archs) list += (list.empty() ? "" : ", ") + a;
    throw Error("attribute attack: unknown backbone arch '" + o.arch + "'; use one of " + list);
  }
  if (o.height < 1 || o.width < 1)
    throw Error("attribute attack: image size must be positive, got " + std::to_string(o.height) +
                "x" + std::to_string(o.width));
  if (o.epochs < 1)
    throw Error("attribute attack: epochs must be at least 1, got " + std::to_string(o.epochs));
  if (o.batch < 1)
    throw Error("attribute attack: batch must be at least 1, got " + std::to_string(o.batch));
  if (!(o.lr > 0) || !std::isfinite(o.lr))
    throw Error("attribute attack: learning rate must be a positive number, got " + str(o.lr));
  if (!(o.weight_decay >= 0) || !std::isfinite(o.weight_decay))
    throw Error("attribute attack: weight decay must be >= 0, got " + str(o.weight_decay));
  if (o.threads < 0)
    throw Error("attribute attack: threads must be >= 0 (0 leaves LibTorch's setting), got " +
                std::to_string(o.threads));
  // Throws for an input too small for the backbone's strides.
  reid::describe(reid::BackboneOptions{o.arch, false}, o.height, o.width);
}

data::TestTransform make_transform(const AttributeAttackOptions& o) {
  data::TransformOptions t;  // ImageNet mean/std, as the ReID transforms normalize
  t.height = o.height;
  t.width = o.width;
  return data::TestTransform(t);
}

// Decodes, resizes and normalizes `files` into one tensor [N,3,H,W].
torch::Tensor load_images(const std::vector<std::filesystem::path>& files,
                          const AttributeAttackOptions& o) {
  const data::TestTransform transform = make_transform(o);
  torch::Tensor images =
      torch::empty({static_cast<int64_t>(files.size()), 3, o.height, o.width}, torch::kFloat32);
  util::Rng unused(0);
  for (std::size_t i = 0; i < files.size(); ++i) {
    torch::Tensor row = images[static_cast<int64_t>(i)];
    transform.apply(util::decode_image(files[i]), unused, row);
  }
  return images;
}

constexpr int64_t kPredictChunk = 256;  // images decoded at a time by predict_files

}  // namespace

struct AttributeClassifier::Impl {
  AttributeAttackOptions options;
  AttributeNet net{nullptr};
  double final_loss = std::nan("");
};

AttributeClassifier::AttributeClassifier(const AttributeAttackOptions& options)
    : impl_(std::make_unique<Impl>()) {
  validate(options);
  if (options.threads > 0) tensor::configure_torch_threads(options.threads);
  impl_->options = options;
  impl_->net = AttributeNet(options.arch, util::Rng::derive(options.seed, 1));
}

AttributeClassifier::~AttributeClassifier() = default;
AttributeClassifier::AttributeClassifier(AttributeClassifier&&) noexcept = default;
AttributeClassifier& AttributeClassifier::operator=(AttributeClassifier&&) noexcept = default;

namespace {
AttributeClassifier::Impl& live(const std::unique_ptr<AttributeClassifier::Impl>& impl) {
  if (!impl)
    throw Error("attribute classifier: used after it was moved from; use the object it moved to");
  return *impl;
}
}  // namespace

const AttributeAttackOptions& AttributeClassifier::options() const { return live(impl_).options; }

double AttributeClassifier::final_loss() const { return live(impl_).final_loss; }

std::vector<std::vector<int>> AttributeClassifier::predict(const torch::Tensor& images) {
  Impl& impl = live(impl_);
  const AttributeAttackOptions& o = impl.options;
  if (!images.defined() || images.dim() != 4 || images.size(1) != 3 ||
      images.size(2) != o.height || images.size(3) != o.width) {
    std::string got = "an undefined tensor";
    if (images.defined()) {
      std::ostringstream s;
      s << images.sizes();
      got = "shape " + s.str();
    }
    throw Error("attribute classifier: expected a batch [N,3," + std::to_string(o.height) + "," +
                std::to_string(o.width) + "] of normalized images, got " + got +
                "; use predict_files for image files");
  }
  const torch::Tensor x = images.to(torch::kCPU, torch::kFloat32);
  impl.net->eval();
  torch::NoGradGuard no_grad;
  const int64_t n = x.size(0);
  std::vector<std::vector<int>> codes(n);
  const int64_t step = std::max<int64_t>(o.batch, 64);
  for (int64_t start = 0; start < n; start += step) {
    const int64_t end = std::min(n, start + step);
    const std::vector<torch::Tensor> logits = impl.net->forward(x.slice(0, start, end));
    for (const torch::Tensor& l : logits) {
      const torch::Tensor arg = l.argmax(1).to(torch::kInt64).contiguous();
      const int64_t* p = arg.data_ptr<int64_t>();
      for (int64_t i = 0; i < end - start; ++i) codes[start + i].push_back(static_cast<int>(p[i]));
    }
  }
  return codes;
}

std::vector<std::vector<int>> AttributeClassifier::predict_files(
    const std::vector<std::filesystem::path>& files) {
  const AttributeAttackOptions& o = live(impl_).options;
  std::vector<std::vector<int>> codes;
  codes.reserve(files.size());
  for (std::size_t start = 0; start < files.size(); start += kPredictChunk) {
    const std::size_t end = std::min(files.size(), start + static_cast<std::size_t>(kPredictChunk));
    const std::vector<std::filesystem::path> chunk(files.begin() + start, files.begin() + end);
    for (auto& c : predict(load_images(chunk, o))) codes.push_back(std::move(c));
  }
  return codes;
}

AttributeClassifier train_attribute_classifier(const data::Dataset& raw,
                                               const data::AttributeTable& table,
                                               const AttributeAttackOptions& options) {
  const std::vector<AttackedAttribute>& attrs = attacked_attributes();
  const std::string where = "raw dataset '" + raw.root.string() + "'";
  std::vector<std::filesystem::path> files;
  std::vector<int64_t> labels;  // row-major [N, attributes]
  for (const data::ImageRecord& r : raw.train) {
    if (r.pid <= 0) continue;
    const auto it = table.find(r.pid);
    if (it == table.end())
      throw Error(where + ": identity " + std::to_string(r.pid) + " ('" + r.path + "') has no " +
                  (table.empty() ? "attributes (no attribute table at all)"
                                 : "row in the attribute table") +
                  "; provide an attributes.csv in the dataset root with a row for every train "
                  "identity (`ppreid synth` writes one)");
    for (const AttackedAttribute& a : attrs) {
      const int code = a.code(it->second);
      if (code < 0 || code >= a.classes)
        throw Error(where + ": identity " + std::to_string(r.pid) + " has " + a.name + " code " +
                    std::to_string(code) + ", outside [0, " + std::to_string(a.classes) +
                    "); fix its row in attributes.csv");
      labels.push_back(code);
    }
    files.push_back(raw.absolute(r));
  }
  if (files.empty())
    throw Error(where + " has no train image with pid > 0 to train the attribute classifier on; "
                "give a dataset whose bounding_box_train holds labelled identities");

  AttributeClassifier classifier(options);  // validates the options, seeds the weights
  AttributeClassifier::Impl& impl = *classifier.impl_;
  const auto t0 = std::chrono::steady_clock::now();
  const torch::Tensor images = load_images(files, options);
  const int64_t n = images.size(0);
  const int64_t num_attrs = static_cast<int64_t>(attrs.size());
  const torch::Tensor targets = torch::tensor(labels, torch::kInt64).view({n, num_attrs});

  torch::optim::Adam adam(impl.net->parameters(),
                          torch::optim::AdamOptions(options.lr).weight_decay(options.weight_decay));
  util::Rng rng(util::Rng::derive(options.seed, 2));  // shuffling and flips
  std::vector<int64_t> order(n);
  impl.net->train();
  for (int epoch = 0; epoch < options.epochs; ++epoch) {
    std::iota(order.begin(), order.end(), 0);
    for (int64_t i = n - 1; i > 0; --i)  // Fisher-Yates with our own draws: same on every stdlib
      std::swap(order[i], order[rng.uniform_int(0, i)]);
    double loss_sum = 0;
    for (int64_t start = 0; start < n;) {
      int64_t end = std::min(n, start + options.batch);
      // A lone last sample would make a batch of one for BatchNorm: it joins the batch before.
      if (n - end == 1) end = n;
      std::vector<int64_t> rows(order.begin() + start, order.begin() + end);
      const torch::Tensor index = torch::tensor(rows, torch::kInt64);
      torch::Tensor x = images.index_select(0, index);
      const torch::Tensor y = targets.index_select(0, index);
      if (options.flip) {
        std::vector<int64_t> flipped;
        for (int64_t i = 0; i < end - start; ++i)
          if (rng.bernoulli(0.5)) flipped.push_back(i);
        if (!flipped.empty()) {
          const torch::Tensor f = torch::tensor(flipped, torch::kInt64);
          x.index_copy_(0, f, x.index_select(0, f).flip({3}));
        }
      }
      const std::vector<torch::Tensor> logits = impl.net->forward(x);
      torch::Tensor loss = torch::zeros({}, torch::kFloat32);
      for (int64_t a = 0; a < num_attrs; ++a)
        loss = loss + torch::nn::functional::cross_entropy(logits[a], y.select(1, a));
      adam.zero_grad();
      loss.backward();
      adam.step();
      const double value = loss.item<double>();
      if (!std::isfinite(value))
        throw Error("attribute attack: the training loss became " + str(value) + " in epoch " +
                    std::to_string(epoch + 1) + "; lower the learning rate (now " +
                    str(options.lr) + ")");
      loss_sum += value * static_cast<double>(end - start);
      start = end;
    }
    impl.final_loss = loss_sum / static_cast<double>(n);
    spdlog::debug("attribute classifier epoch {}/{}: loss {:.4f}", epoch + 1, options.epochs,
                  impl.final_loss);
  }
  impl.net->eval();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  spdlog::info("attribute classifier ({}, {}x{}): {} images, {} epochs, final loss {:.4f}, {:.1f} s",
               options.arch, options.height, options.width, n, options.epochs, impl.final_loss,
               seconds);
  return classifier;
}

AttributeTruth attribute_attack_truth(const data::Dataset& deid, const data::AttributeTable& truth,
                                      const HitPidsFn& hit_pids) {
  if (!hit_pids) throw Error("attribute attack: no identity mapping given (use same_pid)");
  const std::vector<AttackedAttribute>& attrs = attacked_attributes();
  std::map<int, std::vector<int>> codes_of;  // de-identified pid -> true codes
  AttributeTruth out;
  for (const data::ImageRecord& r : deid.train) {
    if (r.pid <= 0) continue;
    auto known = codes_of.find(r.pid);
    if (known == codes_of.end()) {
      const std::vector<int> hits = hit_pids(r.pid);
      if (hits.empty())
        throw Error("the identity mapping gives no pid for de-identified pid " +
                    std::to_string(r.pid) + " ('" + deid.absolute(r).string() +
                    "'); it must give the original pid first");
      const int original = hits.front();
      const auto it = truth.find(original);
      if (it == truth.end())
        throw Error("the attribute truth has no entry for identity " + std::to_string(original) +
                    ", the original of de-identified pid " + std::to_string(r.pid) + " ('" +
                    deid.absolute(r).string() +
                    "'); give the attributes.csv of the raw dataset the de-identified data was "
                    "made from (and, for a method that relabels identities such as PIS, its "
                    "one-time key)");
      std::vector<int> codes;
      for (const AttackedAttribute& a : attrs) {
        const int code = a.code(it->second);
        if (code < 0 || code >= a.classes)
          throw Error("the attribute truth of identity " + std::to_string(original) + " has " +
                      a.name + " code " + std::to_string(code) + ", outside [0, " +
                      std::to_string(a.classes) + "); fix its row in attributes.csv");
        codes.push_back(code);
      }
      known = codes_of.emplace(r.pid, std::move(codes)).first;
    }
    out.codes.push_back(known->second);
    out.files.push_back(deid.absolute(r));
  }
  if (out.files.empty())
    throw Error("de-identified dataset '" + deid.root.string() +
                "' has no train image with pid > 0 to attack; give the de-identified copy of a "
                "labelled raw dataset");
  out.labels = static_cast<int>(codes_of.size());
  return out;
}

AttributeScores evaluate_attribute_attack(AttributeClassifier& classifier,
                                          const data::Dataset& deid,
                                          const data::AttributeTable& truth,
                                          const HitPidsFn& hit_pids) {
  const AttributeTruth t = attribute_attack_truth(deid, truth, hit_pids);
  spdlog::info("attribute attack: {} de-identified images of {} labels", t.files.size(), t.labels);
  return score_attributes(t.codes, classifier.predict_files(t.files));
}

}  // namespace ppreid::privacy
