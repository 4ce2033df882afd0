#include "core/reid/proximal.h"

#include <cmath>
#include <string>
#include <unordered_map>

#include "core/util/error.h"

namespace ppreid::reid {

torch::Tensor proximal_term(const NamedTensors& local, const NamedTensors& global, double mu) {
  if (!std::isfinite(mu) || mu < 0)
    throw Error("FedProx mu must be a finite number >= 0, got " + std::to_string(mu));
  std::unordered_map<std::string, const torch::Tensor*> by_name;
  for (const auto& [name, tensor] : global) by_name.emplace(name, &tensor);

  std::string problems;
  std::vector<torch::Tensor> squares;
  squares.reserve(local.size());
  for (const auto& [name, w] : local) {
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      problems += " '" + name + "' is not in the global weights;";
      continue;
    }
    const torch::Tensor& g = *it->second;
    if (!g.defined() || g.sizes() != w.sizes()) {
      problems += " '" + name + "' has another shape in the global weights;";
      continue;
    }
    // The global weights are a constant of the local objective: no gradient flows into them.
    squares.push_back((w - g.detach().to(w.scalar_type())).square().sum());
  }
  if (!problems.empty())
    throw Error("proximal term: the local and global weights do not match:" + problems +
                " pass the shared parameters and the weights of the same round's Task");
  if (squares.empty()) return torch::zeros({}, torch::kFloat32);
  return torch::stack(squares).sum() * (mu / 2.0);
}

}  // namespace ppreid::reid
