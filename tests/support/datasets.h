#pragma once

#include <filesystem>

#include "core/data/dataset.h"

namespace ppreid::testing {

// A dataset folder with a train split and possibly no query/gallery (a de-identified copy, an
// attacker's data).
inline data::Dataset load_train(const std::filesystem::path& root) {
  data::LoadOptions o;
  o.require_query_gallery = false;
  return data::load_dataset(root, o);
}

}  // namespace ppreid::testing
