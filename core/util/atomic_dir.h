#pragma once

#include <filesystem>
#include <functional>

namespace ppreid::util {

// The points of write_directory_atomic after which a crash leaves a distinct state on disk.
enum class AtomicDirStep {
  kFilled,              // the temporary sibling is complete; `dir` is untouched
  kPreviousMovedAside,  // `dir` was renamed to `.NAME.old` (no `dir` at this instant)
  kSwappedIn,           // the new directory is `dir`; `.NAME.old` is about to be removed
};

// Replaces directory `dir` as a whole: `fill(tmp)` writes the new contents into a fresh sibling
// temporary directory, which is then swapped in. The previous version stays readable (renamed to
// a hidden `.NAME.old` sibling) until the new one is in place, so a crash at any point leaves
// either the old or the new directory complete (checkpoints). A call that finds only `.NAME.old`
// (an earlier call died between its two renames) first renames it back to `dir`, so the last
// complete version survives any number of interrupted calls. The renames are synced to disk.
// `after_step`, when given, is called at each AtomicDirStep; crash tests throw from it, which
// leaves the files exactly as a crash at that point would.
void write_directory_atomic(const std::filesystem::path& dir,
                            const std::function<void(const std::filesystem::path& tmp)>& fill,
                            const std::function<void(AtomicDirStep)>& after_step = nullptr);

// The directory to read: `dir` when it holds `marker` (a file written last), else the `.old`
// copy a crash between the two renames of write_directory_atomic left behind, else nullopt-like
// empty path.
std::filesystem::path complete_directory(const std::filesystem::path& dir, const char* marker);

}  // namespace ppreid::util
