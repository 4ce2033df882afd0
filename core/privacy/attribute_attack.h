#pragma once

// The attribute attack of the PIS paper (Dou et al. 2026, sec. 4.1): a classifier trained on RAW
// images predicts soft-biometric attributes (gender, hair length, age group) of de-identified
// images. A method protects attributes when the classifier's macro F1 on its output falls to what
// guessing the majority class gets.

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/data/attributes.h"
#include "core/data/dataset.h"
#include "core/privacy/identity_attack.h"

namespace ppreid::privacy {

// One attacked attribute: its name in attributes.csv, its class count and how to read it.
struct AttackedAttribute {
  std::string name;  // "gender", "hair_length", "age_group"
  int classes = 2;
  int (*code)(const data::Attributes&) = nullptr;
};

// gender (2 classes), hair_length (2), age_group (4), in that order.
const std::vector<AttackedAttribute>& attacked_attributes();

// Row = truth, column = prediction; codes must lie in [0, classes) (ppreid::Error otherwise).
std::vector<std::vector<int>> confusion_matrix(const std::vector<int>& truth,
                                               const std::vector<int>& predicted, int classes);

// Macro F1 over the classes that occur in `truth` or `predicted` (a class absent from both says
// nothing); F1 of a class with no true and no predicted positives is never averaged. Throws
// ppreid::Error on different lengths or an empty input.
double macro_f1(const std::vector<int>& truth, const std::vector<int>& predicted, int classes);

struct AttributeScore {
  std::string name;
  double f1 = 0;           // macro F1 of the attack
  double accuracy = 0;
  double majority_f1 = 0;  // macro F1 of always predicting the most frequent true class
  int samples = 0;
};

struct AttributeScores {
  std::vector<AttributeScore> attributes;  // in attacked_attributes() order
  double mean_f1 = 0;                      // the paper's number: mean over the attributes
  double mean_majority_f1 = 0;
  // {"mean_f1","mean_majority_f1","samples","attributes":{name:{"f1","accuracy","majority_f1"}}}
  nlohmann::json to_json() const;
};

// Scores predictions against truth; `truth[i]` and `predicted[i]` hold one code per attacked
// attribute. Throws ppreid::Error on mismatched shapes.
AttributeScores score_attributes(const std::vector<std::vector<int>>& truth,
                                 const std::vector<std::vector<int>>& predicted);

struct AttributeAttackOptions {
  std::string arch = "resnet_tiny";  // reid::backbone_archs() name
  int height = 64, width = 32;  // input size the crops are resized to
  int epochs = 10;
  int batch = 32;
  double lr = 1e-3;             // Adam
  double weight_decay = 5e-4;
  bool flip = true;             // random horizontal flips while training
  std::uint64_t seed = 0;       // weights, shuffling and flips: same seed, same classifier
  int threads = 0;              // 0: leave torch's setting alone
};

// The attacker's multi-head classifier (one backbone, one linear head per attacked attribute).
// Move-only owner of the torch module; predict() runs in eval mode without gradients.
class AttributeClassifier {
 public:
  AttributeClassifier(const AttributeAttackOptions& options);
  ~AttributeClassifier();
  AttributeClassifier(AttributeClassifier&&) noexcept;
  AttributeClassifier& operator=(AttributeClassifier&&) noexcept;

  // Codes per image, one per attacked attribute, for a batch [N,3,H,W] of normalized images.
  std::vector<std::vector<int>> predict(const torch::Tensor& images);
  // Reads, resizes and normalizes image files exactly like training does, and predicts them.
  std::vector<std::vector<int>> predict_files(const std::vector<std::filesystem::path>& files);
  const AttributeAttackOptions& options() const;
  double final_loss() const;  // mean training loss of the last epoch

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  friend AttributeClassifier train_attribute_classifier(const data::Dataset&,
                                                        const data::AttributeTable&,
                                                        const AttributeAttackOptions&);
};

// Trains on every TRAIN image of `raw` (pid > 0) labelled with its identity's attributes from
// `table`. Throws ppreid::Error when an identity has no attributes (naming the pid and telling to
// provide attributes.csv) or the split is empty.
AttributeClassifier train_attribute_classifier(const data::Dataset& raw,
                                               const data::AttributeTable& table,
                                               const AttributeAttackOptions& options);

// What the attack scores, before any classifier exists: every de-identified TRAIN image (pid > 0)
// with the attacked-attribute codes (attacked_attributes() order) of its original identity,
// hit_pids(pid)[0], in dataset order. Commands call it before training so that a dataset, table
// or mapping that does not fit fails at once. Throws what evaluate_attribute_attack throws.
struct AttributeTruth {
  std::vector<std::filesystem::path> files;
  std::vector<std::vector<int>> codes;
  int labels = 0;  // distinct de-identified pids
};
AttributeTruth attribute_attack_truth(const data::Dataset& deid, const data::AttributeTable& truth,
                                      const HitPidsFn& hit_pids = same_pid);

// Predicts the attributes of every de-identified TRAIN image (pid > 0) and scores them against
// the ORIGINAL identity's attributes: hit_pids(pid)[0] (for PIS the key's original pid; for
// methods that keep names the pid itself). Throws ppreid::Error when the truth has no entry for
// an original pid or the split is empty.
AttributeScores evaluate_attribute_attack(AttributeClassifier& classifier,
                                          const data::Dataset& deid,
                                          const data::AttributeTable& truth,
                                          const HitPidsFn& hit_pids = same_pid);

}  // namespace ppreid::privacy
