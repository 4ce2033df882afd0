#include "protocols/secagg/graph.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "protocols/secagg/params.h"

namespace ppreid::secagg {

std::map<std::string, std::vector<std::string>> neighbourhoods(std::vector<std::string> sites,
                                                              std::size_t k, std::uint64_t seed) {
  std::sort(sites.begin(), sites.end());
  sites.erase(std::unique(sites.begin(), sites.end()), sites.end());
  const std::size_t n = sites.size();
  std::map<std::string, std::vector<std::string>> out;
  if (k % 2) ++k;
  if (k == 0 || k + 1 >= n) {
    for (const auto& s : sites) out[s] = sites;
    return out;
  }
  std::vector<std::string> ring = sites;
  std::mt19937_64 rng(seed);
  std::shuffle(ring.begin(), ring.end(), rng);
  const std::size_t half = k / 2;
  for (std::size_t i = 0; i < n; ++i) {
    std::vector<std::string>& hood = out[ring[i]];
    for (std::size_t d = 0; d <= 2 * half; ++d) hood.push_back(ring[(i + n - half + d) % n]);
    std::sort(hood.begin(), hood.end());
  }
  return out;
}

std::size_t neighbours_for(std::size_t sites, double dropout, std::size_t complete_up_to) {
  if (sites <= complete_up_to || sites < 3) return 0;
  std::size_t k = std::max<std::size_t>(6, 2 * static_cast<std::size_t>(
                                               std::ceil(std::log2(static_cast<double>(sites)))));
  if (k % 2) ++k;
  for (; k + 1 < sites; k += 2) {
    const double size = static_cast<double>(k + 1);
    const double alive = (1 - dropout) * size - 2 * std::sqrt(size * dropout * (1 - dropout));
    if (alive >= majority_threshold(k + 1)) return k;
  }
  return 0;
}

}  // namespace ppreid::secagg
