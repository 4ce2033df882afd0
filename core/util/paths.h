#pragma once

#include <filesystem>
#include <string>

namespace ppreid::util {

// True when `inner` is `outer` or lies below it, after resolving both with weakly_canonical (so
// "a/../b", symlinks of existing parents and relative paths compare by what they point to).
bool path_within(const std::filesystem::path& inner, const std::filesystem::path& outer);

// A path written in a config file: relative ones mean "next to the file" (`base` is its
// directory), so a config moves together with its keys and data.
std::filesystem::path resolve_config_path(const std::filesystem::path& base,
                                          const std::string& value);

}  // namespace ppreid::util
