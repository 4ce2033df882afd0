#include "core/util/paths.h"

namespace ppreid::util {

bool path_within(const std::filesystem::path& inner, const std::filesystem::path& outer) {
  const auto in = std::filesystem::weakly_canonical(inner);
  const auto out = std::filesystem::weakly_canonical(outer);
  auto i = in.begin();
  for (auto o = out.begin(); o != out.end(); ++o, ++i)
    if (i == in.end() || *i != *o) return false;
  return true;
}

std::filesystem::path resolve_config_path(const std::filesystem::path& base,
                                          const std::string& value) {
  std::filesystem::path p(value);
  return p.is_absolute() ? p : (base / p).lexically_normal();
}

}  // namespace ppreid::util
