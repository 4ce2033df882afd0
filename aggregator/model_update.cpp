#include "aggregator/model_update.h"

#include <unordered_map>
#include <vector>

#include "core/reid/model.h"
#include "core/util/error.h"

namespace ppreid::agg {

std::string_view to_string(UpdateKind kind) {
  return kind == UpdateKind::kDelta ? "delta" : "weights";
}

std::string structure_difference(const NamedTensors& expected, const NamedTensors& actual,
                                 std::size_t max_listed) {
  std::unordered_map<std::string_view, const torch::Tensor*> wanted;
  wanted.reserve(expected.size());
  for (const auto& [name, tensor] : expected) wanted.emplace(name, &tensor);

  std::vector<std::string> problems;
  std::size_t total = 0;
  auto note = [&](std::string what) {
    if (total++ < max_listed) problems.push_back(std::move(what));
  };
  std::unordered_map<std::string_view, int> seen;
  seen.reserve(actual.size());
  for (const auto& [name, tensor] : actual) {
    if (++seen[name] == 2) note("'" + name + "' appears more than once");
    if (seen[name] > 1) continue;
    auto it = wanted.find(name);
    if (it == wanted.end()) {
      note("unexpected '" + name + "'");
      continue;
    }
    const torch::Tensor& want = *it->second;
    if (!tensor.defined() || tensor.sizes() != want.sizes()) {
      note("'" + name + "' has shape " + reid::shape_string(tensor) + ", expected " + reid::shape_string(want));
    } else if (tensor.scalar_type() != want.scalar_type()) {
      note("'" + name + "' has dtype " + std::string(c10::toString(tensor.scalar_type())) +
           ", expected " + c10::toString(want.scalar_type()));
    }
  }
  for (const auto& [name, tensor] : expected) {
    if (!seen.count(name)) note("missing '" + name + "'");
  }
  std::string out;
  for (const auto& p : problems) out += (out.empty() ? "" : "; ") + p;
  if (total > problems.size()) out += "; and " + std::to_string(total - problems.size()) + " more";
  return out;
}

void require_aligned(const NamedTensors& global, const ModelUpdate& update,
                     std::string_view who) {
  bool aligned = global.size() == update.tensors.size();
  for (std::size_t i = 0; aligned && i < global.size(); ++i) {
    const auto& [name, want] = global[i];
    const auto& [got_name, got] = update.tensors[i];
    aligned = name == got_name && got.defined() && got.sizes() == want.sizes() &&
              got.scalar_type() == want.scalar_type();
  }
  if (aligned) return;
  std::string difference = structure_difference(global, update.tensors);
  throw Error(std::string(who) + ": the update of site '" + update.site +
              "' does not match the global model (" +
              (difference.empty() ? "tensor order differs" : difference) +
              "); pass updates through UpdateValidator::admit first");
}

bool is_batchnorm_statistic(std::string_view name) {
  auto ends_with = [&](std::string_view suffix) {
    return name.size() >= suffix.size() && name.substr(name.size() - suffix.size()) == suffix;
  };
  return ends_with(".running_mean") || ends_with(".running_var") || name == "running_mean" ||
         name == "running_var";
}

bool is_counter(const torch::Tensor& tensor) {
  return !at::isFloatingType(tensor.scalar_type()) && !at::isComplexType(tensor.scalar_type());
}

std::size_t byte_size(const NamedTensors& tensors) {
  std::size_t bytes = 0;
  for (const auto& [name, t] : tensors)
    if (t.defined()) bytes += t.numel() * t.element_size();
  return bytes;
}

}  // namespace ppreid::agg
