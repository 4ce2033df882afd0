#include "core/deid/deid_commands.h"

#include <cmath>
#include <iostream>
#include <thread>

#include "core/deid/baselines.h"
#include "core/deid/deid_runner.h"
#include "core/deid/image_dp.h"
#include "core/deid/pis/one_time_key.h"
#include "core/deid/pis/pis_deidentifier.h"
#include "core/util/error.h"
#include "core/util/paths.h"
#include "core/util/threads.h"

namespace ppreid::deid {
namespace {

struct DeidArgs {
  std::string method;
  DeidRunOptions run;
  std::string in, out;
  double epsilon = 1.0;
  int pixel_bits = 0, color_bits = 6;
  std::string calibration = "tight";
  std::string preset;
  std::string kernel = "S";
  int block = 4;
  std::uint64_t seed = 0;
  bool json = false;
  // pis
  std::string model, partners, partner_attribute, one_time_key, key_file;
  int k = 2;
  double lambda = 0.5, max_weight = 0.5;
  bool sample = false;
};

namespace fs = std::filesystem;

// The one-time key re-identifies everybody in the release: refuse to put it where the data goes
// (or comes from), and check the key file before hours of work rather than after.
void check_one_time_key(const DeidArgs& a) {
  if (a.one_time_key.empty() != a.key_file.empty())
    throw UsageError("--one-time-key and --key-file go together: the mapping is only ever written "
                     "encrypted under a key file (create one with `ppreid pis keygen --out FILE`)");
  if (a.one_time_key.empty()) return;
  for (const auto& [dir, flag] : {std::pair{a.out, "--out"}, std::pair{a.in, "--in"}}) {
    if (util::path_within(a.one_time_key, dir))
      throw UsageError("--one-time-key '" + a.one_time_key + "' is inside " + flag +
                       "; keep the key away from the data it unlocks");
    if (util::path_within(a.key_file, dir))
      throw UsageError("--key-file '" + a.key_file + "' is inside " + flag +
                       "; keep the key away from the data it unlocks");
  }
  if (fs::exists(a.one_time_key) && !a.run.resume)
    throw UsageError("--one-time-key '" + a.one_time_key + "' exists; choose a new file");
  pis::read_key_file(a.key_file);  // throws on a missing, unsafe or malformed key file
}

// "S" and "L" are the papers' 11x5 and 21x11 kernels (rows x columns); "HxW" is any odd size.
std::pair<int, int> parse_kernel(const std::string& text) {
  if (text == "S") return {11, 5};
  if (text == "L") return {21, 11};
  int h = 0, w = 0;
  char x = 0, extra = 0;
  if (std::sscanf(text.c_str(), "%d%c%d%c", &h, &x, &w, &extra) == 3 && x == 'x') return {h, w};
  throw UsageError("--kernel: '" + text + "' is not S, L or ROWSxCOLS (for example 25x25)");
}

std::unique_ptr<Deidentifier> make_method(const DeidArgs& a, const CLI::App& cmd) {
  auto given = [&](const char* flag) { return cmd.get_option(flag)->count() > 0; };
  auto only_for = [&](std::initializer_list<const char*> flags, const std::string& method) {
    for (const char* f : flags)
      if (given(f) && a.method != method)
        throw UsageError(std::string(f) + " applies to --method " + method + " only");
  };
  only_for({"--epsilon", "--pixel-bits", "--calibration", "--preset"}, "dp");
  only_for({"--model", "--k", "--lambda", "--max-weight", "--sample", "--partner-attribute",
            "--partners", "--one-time-key", "--key-file"},
           "pis");
  if (given("--seed") && a.method != "dp" && a.method != "pis")
    throw UsageError("--seed applies to --method dp and pis only");
  only_for({"--kernel"}, "blur");
  only_for({"--block"}, "pixelate");
  if (given("--color-bits") && a.method != "dp" && a.method != "quantize")
    throw UsageError("--color-bits applies to --method dp and quantize only");

  if (a.method == "dp") {
    ImageDpOptions o;
    if (given("--preset")) {
      if (given("--pixel-bits") || given("--color-bits"))
        throw UsageError("--preset sets --pixel-bits and --color-bits; give one or the other");
      if (a.preset.size() != 1) throw UsageError("--preset must be one of A, B, C, D");
      o = image_dp_preset(a.preset[0], a.epsilon);
    } else {
      o.pixel_bits = a.pixel_bits;
      o.color_bits = a.color_bits;
    }
    o.epsilon = a.epsilon;
    o.calibration = a.calibration == "paper" ? Calibration::kPaper : Calibration::kTight;
    if (given("--seed")) o.seed = a.seed;
    return std::make_unique<ImageDp>(o);
  }
  if (a.method == "pis") {
    if (a.model.empty())
      throw UsageError("--method pis needs --model DIR (the checkpoint of `ppreid pis train`)");
    check_one_time_key(a);
    pis::PisShiftOptions o;
    o.model = a.model;
    o.k = a.k;
    o.lambda = a.lambda;
    o.max_weight = a.max_weight;
    o.sample = a.sample;
    o.opposite_attribute = a.partner_attribute;
    if (!a.partners.empty()) o.partners = a.partners;
    if (given("--seed")) o.seed = a.seed;
    if (!a.one_time_key.empty()) {
      o.one_time_key = a.one_time_key;
      o.key_file = a.key_file;
      o.reuse_one_time_key = a.run.resume;
    } else if (a.run.resume && !given("--seed")) {
      // A CSPRNG plan cannot be drawn again; only its one-time key can bring it back.
      throw UsageError("--resume with --method pis needs the interrupted run's --one-time-key and "
                       "--key-file (or its --seed): a new random shift would release people twice");
    }
    return std::make_unique<pis::PisDeidentifier>(o);
  }
  if (a.method == "blur") {
    auto [h, w] = parse_kernel(a.kernel);
    return std::make_unique<GaussianBlur>(h, w);
  }
  if (a.method == "pixelate") return std::make_unique<Pixelate>(a.block);
  if (a.method == "quantize") return std::make_unique<Quantize>(given("--color-bits") ? a.color_bits : 4);
  if (a.method == "remove-head") return std::make_unique<RemoveRegion>(BodyRegion::kHead);
  if (a.method == "remove-body") return std::make_unique<RemoveRegion>(BodyRegion::kBody);
  return std::make_unique<Identity>();
}

void run(DeidArgs& a, const CLI::App& cmd) {
  auto method = make_method(a, cmd);
  a.run.in = a.in;
  a.run.out = a.out;
  if (a.method == "pis") {
    // Image workers run the network concurrently: one LibTorch thread each.
    const int workers = a.run.threads > 0 ? a.run.threads
                                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    util::configure_torch_threads(workers > 1 ? 1 : 0);
  }
  const bool new_key = !a.one_time_key.empty() && !fs::exists(a.one_time_key);
  DeidReport report;
  try {
    report = deidentify_dataset(*method, a.run);
  } catch (...) {
    // The run left nothing behind; neither may the key of a release that did not happen.
    if (new_key && !a.run.resume) fs::remove(a.one_time_key);
    throw;
  }
  if (!a.one_time_key.empty())
    std::cerr << "one-time key (encrypted): " << a.one_time_key << "\n";
  if (a.json) {
    std::cout << report.manifest.dump(2) << "\n";
    return;
  }
  std::cout << "de-identified " << report.images << " images with " << method->name() << " in "
            << report.seconds << " s";
  if (report.resumed) std::cout << " (" << report.resumed << " already done)";
  std::cout << "\n  mean SSIM " << report.mean_ssim << ", mean PSNR " << report.mean_psnr
            << " dB\n  manifest: " << (a.run.out / "deid.json").string() << "\n";
}

}  // namespace

void register_deid_commands(CLI::App& app) {
  auto a = std::make_shared<DeidArgs>();
  CLI::App* cmd = app.add_subcommand(
      "deid", "De-identify a dataset (PIS, image DP or a classic baseline) into a new directory");
  cmd->add_option("--method", a->method,
                  "pis, dp, blur, pixelate, quantize, remove-head, remove-body, none")
      ->required()
      ->check(CLI::IsMember(
          {"pis", "dp", "blur", "pixelate", "quantize", "remove-head", "remove-body", "none"}));
  cmd->add_option("--in", a->in, "Input dataset (Market-1501 or DukeMTMC layout)")->required();
  cmd->add_option("--out", a->out, "Output directory (new or empty; never inside --in)")->required();
  cmd->add_option("--epsilon", a->epsilon, "dp: privacy budget per image (> 0; 'inf' = no noise)");
  cmd->add_option("--pixel-bits", a->pixel_bits, "dp: b, blocks of 2^b x 2^b pixels");
  cmd->add_option("--color-bits", a->color_bits, "dp/quantize: c, drop c of 8 bits per channel");
  cmd->add_option("--calibration", a->calibration, "dp: paper (Table I formula) or tight")
      ->check(CLI::IsMember({"paper", "tight"}));
  cmd->add_option("--preset", a->preset, "dp: the paper's settings A, B, C or D")
      ->check(CLI::IsMember({"A", "B", "C", "D"}));
  cmd->add_option("--seed", a->seed,
                  "dp/pis: deterministic DRBG for experiments (default: CSPRNG)");
  cmd->add_option("--model", a->model, "pis: checkpoint directory of `ppreid pis train`");
  cmd->add_option("--k", a->k, "pis: images mixed per output (the target + k-1 partners)")
      ->check(CLI::Range(2, 16));
  cmd->add_option("--lambda", a->lambda, "pis: the target's weight; partners share the rest");
  cmd->add_option("--max-weight", a->max_weight, "pis: d, the largest weight any image may get");
  cmd->add_flag("--sample", a->sample, "pis: draw z ~ N(mix, I) instead of the mixture's mean");
  cmd->add_option("--partner-attribute", a->partner_attribute,
                  "pis: partners differ in this attribute (e.g. gender; needs attributes.csv)");
  cmd->add_option("--partners", a->partners, "pis: take partner images from this dataset");
  cmd->add_option("--one-time-key", a->one_time_key,
                  "pis: write the new->original identity mapping here, encrypted (never next to "
                  "the data)");
  cmd->add_option("--key-file", a->key_file,
                  "pis: AES-256-GCM key for --one-time-key (ppreid pis keygen)");
  cmd->add_option("--kernel", a->kernel, "blur: S (11x5), L (21x11) or ROWSxCOLS");
  cmd->add_option("--block", a->block, "pixelate: block size in pixels");
  cmd->add_option("--threads", a->run.threads, "Worker threads (0 = all cores)")
      ->check(CLI::Range(0, 256));
  cmd->add_option("--jpeg-quality", a->run.jpeg_quality, "Quality of .jpg outputs")
      ->check(CLI::Range(1, 100));
  cmd->add_flag("--resume", a->run.resume, "Finish an interrupted run (no image is released twice)");
  cmd->add_flag("--detectability", a->run.detectability,
                "Also report how often the HOG people detector still finds the person");
  cmd->add_flag("--json", a->json, "Print the manifest (with mean SSIM/PSNR) as JSON");
  cmd->callback([a, cmd] { run(*a, *cmd); });
}

}  // namespace ppreid::deid
