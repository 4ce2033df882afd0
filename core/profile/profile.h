#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "core/data/loader_options.h"
#include "core/data/synth/synth_options.h"

namespace ppreid {
namespace util {
class ConfigReader;
}

struct RuntimeOptions {
  // LibTorch intra-op threads. Debian's LibTorch starts with ONE thread, so this is always set
  // explicitly; 0 means "all cores".
  int threads = 0;
  std::uint64_t seed = 1;
};

// One model/data profile (configs/tiny.yaml, small.yaml, paper.yaml). Sections grow as the
// project grows; every key is checked, so a typo is an error and not a silently ignored setting.
struct Profile {
  std::string name = "default";
  std::string source;  // the file it was loaded from, for messages and manifests
  RuntimeOptions runtime;
  data::synth::SynthOptions synth;
  data::TransformOptions transform;
  data::LoaderOptions loader;
};

// Loads and validates a profile; errors name the file, the dotted key and the line.
Profile load_profile(const std::filesystem::path& file);
Profile parse_profile(const std::string& yaml, const std::string& file_label);

// Reads the sections every profile-like config shares (name, runtime, image, synth, transform,
// loader) without rejecting leftovers, for configs that add sections of their own (training,
// PIS, simulations) and call finish() themselves.
void read_profile_sections(util::ConfigReader& root, Profile& p);

// Resolves `--config` arguments: an existing path is used as is; a bare profile name (`tiny`)
// is looked up under configs/ next to the working directory, the binary and the install prefix.
std::filesystem::path find_profile(const std::string& name_or_path);

}  // namespace ppreid
