#pragma once

// Builds a Deidentifier from named parameters. `ppreid deid` fills it from its flags and a site
// from its YAML (client/site_config.h), so both accept the same methods, names and defaults.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/deid/deidentifier.h"

namespace ppreid::deid {

// One field per `ppreid deid` flag; an unset field takes the flag's default. Setting a field that
// does not belong to `method` is an error (almost always a mistake in the command or config).
struct MethodSpec {
  std::string method = "none";  // one of method_names()
  // dp
  std::optional<double> epsilon;
  std::optional<int> pixel_bits;
  std::optional<std::string> calibration;  // paper | tight
  std::optional<std::string> preset;       // A | B | C | D
  // dp and quantize
  std::optional<int> color_bits;
  // dp and pis: deterministic DRBG (unset: CSPRNG)
  std::optional<std::uint64_t> seed;
  // pis
  std::optional<std::filesystem::path> model, partners, one_time_key, key_file;
  std::optional<std::string> partner_attribute;
  std::optional<int> k;
  std::optional<double> lambda, max_weight;
  std::optional<bool> sample;
  // blur / pixelate
  std::optional<std::string> kernel;  // S | L | ROWSxCOLS
  std::optional<int> block;
  // The run finishes an interrupted one (pis: only with a seed or a one-time key).
  bool resume = false;
};

// "pis", "dp", "blur", "pixelate", "quantize", "remove-head", "remove-body", "none".
const std::vector<std::string>& method_names();

// How errors name a parameter: `ppreid deid` passes "--" and "-" ("--pixel-bits"), a config file
// its section ("deid.", "-" gives "deid.pixel-bits").
struct ParameterNaming {
  std::string prefix = "--";
  std::string separator = "-";
  std::string name(const std::string& words) const;  // "pixel_bits" -> "--pixel-bits"
};

// Throws UsageError for an unknown method, parameters of another method and invalid values.
// Does not check the one-time key files (the caller knows where the data goes).
std::unique_ptr<Deidentifier> make_deidentifier(const MethodSpec& spec,
                                                const ParameterNaming& naming = {});

}  // namespace ppreid::deid
