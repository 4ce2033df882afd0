#pragma once

#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/data/dataset.h"

namespace ppreid::testing {

// A copy of a dataset's train split with every file's pid in its name replaced by pid + 100 (a
// renaming method such as PIS), and the table new pid -> {original pid, partners...} that undoes
// it; `partner_offset` > 0 adds a made-up partner pid + partner_offset after the original.
inline std::map<int, std::vector<int>> write_renamed_copy(const data::Dataset& raw,
                                                          const std::filesystem::path& out,
                                                          int partner_offset = 0) {
  namespace fs = std::filesystem;
  fs::create_directories(out / "bounding_box_train");
  std::map<int, std::vector<int>> table;
  for (const data::ImageRecord& r : raw.train) {
    const std::string name = fs::path(r.path).filename().string();
    char pid[16];
    std::snprintf(pid, sizeof pid, "%04d", r.pid + 100);
    fs::copy_file(raw.absolute(r), out / "bounding_box_train" / (pid + name.substr(4)));
    table[r.pid + 100] = {r.pid};
    if (partner_offset > 0) table[r.pid + 100].push_back(r.pid + partner_offset);
  }
  return table;
}

}  // namespace ppreid::testing
