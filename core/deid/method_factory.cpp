#include "core/deid/method_factory.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "core/deid/baselines.h"
#include "core/deid/image_dp.h"
#include "core/deid/pis/pis_deidentifier.h"
#include "core/util/error.h"

namespace ppreid::deid {
namespace {

// "S" and "L" are the papers' 11x5 and 21x11 kernels (rows x columns); "HxW" is any odd size.
std::pair<int, int> parse_kernel(const std::string& text, const std::string& flag) {
  if (text == "S") return {11, 5};
  if (text == "L") return {21, 11};
  int h = 0, w = 0;
  char x = 0, extra = 0;
  if (std::sscanf(text.c_str(), "%d%c%d%c", &h, &x, &w, &extra) == 3 && x == 'x') return {h, w};
  throw UsageError(flag + ": '" + text + "' is not S, L or ROWSxCOLS (for example 25x25)");
}

}  // namespace

const std::vector<std::string>& method_names() {
  static const std::vector<std::string> names = {
      "pis", "dp", "blur", "pixelate", "quantize", "remove-head", "remove-body", "none"};
  return names;
}

std::string ParameterNaming::name(const std::string& words) const {
  std::string out = words;
  std::replace(out.begin(), out.end(), '_', separator.empty() ? '_' : separator[0]);
  return prefix + out;
}

std::unique_ptr<Deidentifier> make_deidentifier(const MethodSpec& s,
                                                const ParameterNaming& naming) {
  const std::string& m = s.method;
  const auto& names = method_names();
  if (std::find(names.begin(), names.end(), m) == names.end())
    throw UsageError(naming.name("method") + ": '" + m +
                     "' is not one of pis, dp, blur, pixelate, quantize, remove-head, "
                     "remove-body, none");
  auto only_for = [&](bool given, const char* field, std::initializer_list<const char*> methods) {
    if (!given) return;
    std::string list;
    for (const char* allowed : methods) {
      if (m == allowed) return;
      list += list.empty() ? allowed : std::string(" and ") + allowed;
    }
    throw UsageError(naming.name(field) + " applies to " + naming.name("method") + " " + list +
                     " only");
  };
  only_for(s.epsilon.has_value(), "epsilon", {"dp"});
  only_for(s.pixel_bits.has_value(), "pixel_bits", {"dp"});
  only_for(s.calibration.has_value(), "calibration", {"dp"});
  only_for(s.preset.has_value(), "preset", {"dp"});
  only_for(s.model.has_value(), "model", {"pis"});
  only_for(s.k.has_value(), "k", {"pis"});
  only_for(s.lambda.has_value(), "lambda", {"pis"});
  only_for(s.max_weight.has_value(), "max_weight", {"pis"});
  only_for(s.sample.has_value(), "sample", {"pis"});
  only_for(s.partner_attribute.has_value(), "partner_attribute", {"pis"});
  only_for(s.partners.has_value(), "partners", {"pis"});
  only_for(s.one_time_key.has_value(), "one_time_key", {"pis"});
  only_for(s.key_file.has_value(), "key_file", {"pis"});
  only_for(s.seed.has_value(), "seed", {"dp", "pis"});
  only_for(s.kernel.has_value(), "kernel", {"blur"});
  only_for(s.block.has_value(), "block", {"pixelate"});
  only_for(s.color_bits.has_value(), "color_bits", {"dp", "quantize"});

  if (m == "dp") {
    const double epsilon = s.epsilon.value_or(1.0);
    ImageDpOptions o;
    if (s.preset) {
      if (s.pixel_bits || s.color_bits)
        throw UsageError(naming.name("preset") + " sets " + naming.name("pixel_bits") + " and " +
                         naming.name("color_bits") + "; give one or the other");
      if (s.preset->size() != 1 || std::string("ABCD").find((*s.preset)[0]) == std::string::npos)
        throw UsageError(naming.name("preset") + " must be one of A, B, C, D");
      o = image_dp_preset((*s.preset)[0], epsilon);
    } else {
      o.pixel_bits = s.pixel_bits.value_or(0);
      o.color_bits = s.color_bits.value_or(6);
    }
    o.epsilon = epsilon;
    const std::string calibration = s.calibration.value_or("tight");
    if (calibration != "paper" && calibration != "tight")
      throw UsageError(naming.name("calibration") + " must be paper or tight, not '" +
                       calibration + "'");
    o.calibration = calibration == "paper" ? Calibration::kPaper : Calibration::kTight;
    if (s.seed) o.seed = *s.seed;
    return std::make_unique<ImageDp>(o);
  }
  if (m == "pis") {
    if (!s.model || s.model->empty())
      throw UsageError("method pis needs " + naming.name("model") +
                       " (the checkpoint directory of `ppreid pis train`)");
    pis::PisShiftOptions o;
    o.model = *s.model;
    o.k = s.k.value_or(2);
    if (o.k < 2 || o.k > 16)
      throw UsageError(naming.name("k") + " must be 2 to 16, got " + std::to_string(o.k));
    o.lambda = s.lambda.value_or(0.5);
    o.max_weight = s.max_weight.value_or(0.5);
    o.sample = s.sample.value_or(false);
    o.opposite_attribute = s.partner_attribute.value_or("");
    if (s.partners) o.partners = *s.partners;
    if (s.seed) o.seed = *s.seed;
    if (s.one_time_key) {
      o.one_time_key = *s.one_time_key;
      o.key_file = s.key_file.value_or("");
      o.reuse_one_time_key = s.resume;
    } else if (s.resume && !s.seed) {
      // A CSPRNG plan cannot be drawn again; only its one-time key can bring it back.
      throw UsageError("resuming " + naming.name("method") + " pis needs the interrupted run's " +
                       naming.name("one_time_key") + " and " + naming.name("key_file") +
                       " (or its " + naming.name("seed") +
                       "): a new random shift would release people twice");
    }
    return std::make_unique<pis::PisDeidentifier>(o);
  }
  if (m == "blur") {
    auto [h, w] = parse_kernel(s.kernel.value_or("S"), naming.name("kernel"));
    return std::make_unique<GaussianBlur>(h, w);
  }
  if (m == "pixelate") return std::make_unique<Pixelate>(s.block.value_or(4));
  if (m == "quantize") return std::make_unique<Quantize>(s.color_bits.value_or(4));
  if (m == "remove-head") return std::make_unique<RemoveRegion>(BodyRegion::kHead);
  if (m == "remove-body") return std::make_unique<RemoveRegion>(BodyRegion::kBody);
  return std::make_unique<Identity>();
}

}  // namespace ppreid::deid
