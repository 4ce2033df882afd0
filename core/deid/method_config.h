#pragma once

// A de-identification method in YAML: the `deid` section of a site config and the method lists
// of simulation configs. Keys are `ppreid deid`'s flags without the dashes (pixel-bits, ...).

#include <filesystem>
#include <string>

#include "core/deid/method_factory.h"

namespace ppreid::util {
class ConfigReader;
}

namespace ppreid::deid {

// Reads `method` (required) and the parameter keys present; relative paths (model, partners,
// one-time-key, key-file) are resolved against `base_dir`. Leaves other keys of the mapping to
// the caller (who calls finish()). Errors name the file, the dotted key and the line.
MethodSpec read_method_spec(util::ConfigReader& r, const std::filesystem::path& base_dir);

// The inverse: a YAML block mapping (one `key: value` per line, each prefixed by `indent`) that
// read_method_spec reads back into the same spec. Paths are written absolute.
std::string format_method_spec(const MethodSpec& spec, const std::string& indent = "");

// A short human label for tables: "none", "dp eps=1e+05 b=1 c=6", "blur L", "pis k=2".
std::string describe_method(const MethodSpec& spec);

}  // namespace ppreid::deid
