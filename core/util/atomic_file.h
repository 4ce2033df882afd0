#pragma once

#include <filesystem>
#include <functional>
#include <string_view>

namespace ppreid::util {

// Writes `contents` to `path` so that readers see either the old file or the complete new one:
// write to a temporary file in the same directory, fsync it, rename over `path`, fsync the dir.
void write_file_atomic(const std::filesystem::path& path, std::string_view contents);

// Same guarantee for writers that produce the file themselves (OpenCV encoders, archives):
// `write(tmp)` must create the temporary path it is given.
void write_atomic_with(const std::filesystem::path& path,
                       const std::function<void(const std::filesystem::path& tmp)>& write);

std::string read_file(const std::filesystem::path& path);

// fsyncs a directory so that renames and new entries in it survive a power loss (filesystems
// that refuse fsync on directories are tolerated: the rename itself is still atomic).
void sync_directory(const std::filesystem::path& dir);

}  // namespace ppreid::util
