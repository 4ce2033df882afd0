#include "core/util/atomic_dir.h"

#include "core/util/atomic_file.h"

namespace ppreid::util {
namespace fs = std::filesystem;
namespace {

fs::path sibling(const fs::path& dir, const char* suffix) {
  return dir.parent_path() / ("." + dir.filename().string() + suffix);
}

}  // namespace

void write_directory_atomic(const fs::path& dir, const std::function<void(const fs::path&)>& fill,
                            const std::function<void(AtomicDirStep)>& after_step) {
  auto step = [&](AtomicDirStep s) {
    if (after_step) after_step(s);
  };
  fs::path tmp = sibling(dir, ".tmp");
  fs::path old = sibling(dir, ".old");
  fs::path parent = dir.parent_path().empty() ? fs::path(".") : dir.parent_path();
  // `.old` without `dir` is the complete previous version of an interrupted call: deleting it
  // below would leave no complete version until this call's rename, so restore it first.
  if (!fs::exists(dir) && fs::exists(old)) fs::rename(old, dir);
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  fill(tmp);
  sync_directory(tmp);
  step(AtomicDirStep::kFilled);
  fs::remove_all(old);
  if (fs::exists(dir)) {
    fs::rename(dir, old);
    step(AtomicDirStep::kPreviousMovedAside);
  }
  fs::rename(tmp, dir);
  sync_directory(parent);
  step(AtomicDirStep::kSwappedIn);
  fs::remove_all(old);
}

fs::path complete_directory(const fs::path& dir, const char* marker) {
  if (fs::exists(dir / marker)) return dir;
  fs::path old = sibling(dir, ".old");
  if (fs::exists(old / marker)) return old;
  return {};
}

}  // namespace ppreid::util
