#include "core/util/atomic_dir.h"

namespace ppreid::util {
namespace fs = std::filesystem;
namespace {

fs::path sibling(const fs::path& dir, const char* suffix) {
  return dir.parent_path() / ("." + dir.filename().string() + suffix);
}

}  // namespace

void write_directory_atomic(const fs::path& dir, const std::function<void(const fs::path&)>& fill) {
  fs::path tmp = sibling(dir, ".tmp");
  fs::path old = sibling(dir, ".old");
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  fill(tmp);
  fs::remove_all(old);
  if (fs::exists(dir)) fs::rename(dir, old);
  fs::rename(tmp, dir);
  fs::remove_all(old);
}

fs::path complete_directory(const fs::path& dir, const char* marker) {
  if (fs::exists(dir / marker)) return dir;
  fs::path old = sibling(dir, ".old");
  if (fs::exists(old / marker)) return old;
  return {};
}

}  // namespace ppreid::util
