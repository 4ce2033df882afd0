#pragma once

#include <filesystem>
#include <functional>

namespace ppreid::util {

// Replaces directory `dir` as a whole: `fill(tmp)` writes the new contents into a fresh sibling
// temporary directory, which is then swapped in. The previous version stays readable (renamed to
// a hidden `.NAME.old` sibling) until the new one is in place, so a crash at any point leaves
// either the old or the new directory complete (checkpoints).
void write_directory_atomic(const std::filesystem::path& dir,
                            const std::function<void(const std::filesystem::path& tmp)>& fill);

// The directory to read: `dir` when it holds `marker` (a file written last), else the `.old`
// copy a crash between the two renames of write_directory_atomic left behind, else nullopt-like
// empty path.
std::filesystem::path complete_directory(const std::filesystem::path& dir, const char* marker);

}  // namespace ppreid::util
