#pragma once

#include <filesystem>

namespace ppreid::util {

// True when `inner` is `outer` or lies below it, after resolving both with weakly_canonical (so
// "a/../b", symlinks of existing parents and relative paths compare by what they point to).
bool path_within(const std::filesystem::path& inner, const std::filesystem::path& outer);

}  // namespace ppreid::util
