#include "core/deid/method_config.h"

#include <cstdio>
#include <sstream>
#include <type_traits>

#include "core/util/config.h"
#include "core/util/paths.h"

namespace ppreid::deid {
namespace fs = std::filesystem;

MethodSpec read_method_spec(util::ConfigReader& r, const fs::path& base_dir) {
  MethodSpec s;
  if (!r.has("method"))
    r.fail("method", "is required: pis, dp, blur, pixelate, quantize, remove-head, remove-body "
                     "or none");
  r.get_choice("method", s.method, method_names());
  auto opt = [&](const char* key, auto& field) {
    if (!r.has(key)) return;
    typename std::remove_reference_t<decltype(field)>::value_type v{};
    r.get(key, v);
    field = v;
  };
  auto opt_path = [&](const char* key, std::optional<fs::path>& field) {
    if (!r.has(key)) return;
    std::string v;
    r.get(key, v);
    field = util::resolve_config_path(base_dir, v);
  };
  opt("epsilon", s.epsilon);
  opt("pixel-bits", s.pixel_bits);
  opt("color-bits", s.color_bits);
  opt("calibration", s.calibration);
  opt("preset", s.preset);
  opt("seed", s.seed);
  opt_path("model", s.model);
  opt_path("partners", s.partners);
  opt_path("one-time-key", s.one_time_key);
  opt_path("key-file", s.key_file);
  opt("partner-attribute", s.partner_attribute);
  opt("k", s.k);
  opt("lambda", s.lambda);
  opt("max-weight", s.max_weight);
  opt("sample", s.sample);
  opt("kernel", s.kernel);
  opt("block", s.block);
  return s;
}

namespace {

std::string number(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// Double-quoted YAML scalar (paths and words may hold ':' or '#').
std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

std::string format_method_spec(const MethodSpec& s, const std::string& indent) {
  std::ostringstream out;
  auto line = [&](const char* key, const std::string& value) {
    out << indent << key << ": " << value << "\n";
  };
  line("method", s.method);
  if (s.epsilon) line("epsilon", number(*s.epsilon));
  if (s.pixel_bits) line("pixel-bits", std::to_string(*s.pixel_bits));
  if (s.color_bits) line("color-bits", std::to_string(*s.color_bits));
  if (s.calibration) line("calibration", quoted(*s.calibration));
  if (s.preset) line("preset", quoted(*s.preset));
  if (s.seed) line("seed", std::to_string(*s.seed));
  if (s.model) line("model", quoted(fs::absolute(*s.model).string()));
  if (s.partners) line("partners", quoted(fs::absolute(*s.partners).string()));
  if (s.one_time_key) line("one-time-key", quoted(fs::absolute(*s.one_time_key).string()));
  if (s.key_file) line("key-file", quoted(fs::absolute(*s.key_file).string()));
  if (s.partner_attribute) line("partner-attribute", quoted(*s.partner_attribute));
  if (s.k) line("k", std::to_string(*s.k));
  if (s.lambda) line("lambda", number(*s.lambda));
  if (s.max_weight) line("max-weight", number(*s.max_weight));
  if (s.sample) line("sample", *s.sample ? "true" : "false");
  if (s.kernel) line("kernel", quoted(*s.kernel));
  if (s.block) line("block", std::to_string(*s.block));
  return out.str();
}

std::string describe_method(const MethodSpec& s) {
  std::ostringstream out;
  out << s.method;
  auto g = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return std::string(buf);
  };
  if (s.preset) out << " " << *s.preset;
  if (s.epsilon) out << " eps=" << g(*s.epsilon);
  if (s.pixel_bits) out << " b=" << *s.pixel_bits;
  if (s.color_bits) out << " c=" << *s.color_bits;
  if (s.kernel) out << " " << *s.kernel;
  if (s.block) out << " " << *s.block << "px";
  if (s.k) out << " k=" << *s.k;
  if (s.lambda) out << " lambda=" << g(*s.lambda);
  return out.str();
}

}  // namespace ppreid::deid
