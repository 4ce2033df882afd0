#include "apps/ppreid/commands.h"

#include <cmath>
#include <iostream>
#include <thread>

#include "core/deid/deid_runner.h"
#include "core/deid/method_factory.h"
#include "core/deid/pis/one_time_key.h"
#include "core/util/error.h"
#include "core/util/paths.h"
#include "core/tensor/torch_threads.h"

namespace ppreid::deid {
namespace {

struct DeidArgs {
  std::string method;
  DeidRunOptions run;
  std::string in, out, report;
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

// The flags the user gave, as a MethodSpec: flags left out take the factory's defaults, and the
// factory refuses flags of another method.
std::unique_ptr<Deidentifier> make_method(const DeidArgs& a, const CLI::App& cmd) {
  auto given = [&](const char* flag) { return cmd.get_option(flag)->count() > 0; };
  MethodSpec s;
  s.method = a.method;
  s.resume = a.run.resume;
  if (given("--epsilon")) s.epsilon = a.epsilon;
  if (given("--pixel-bits")) s.pixel_bits = a.pixel_bits;
  if (given("--color-bits")) s.color_bits = a.color_bits;
  if (given("--calibration")) s.calibration = a.calibration;
  if (given("--preset")) s.preset = a.preset;
  if (given("--seed")) s.seed = a.seed;
  if (given("--model")) s.model = a.model;
  if (given("--k")) s.k = a.k;
  if (given("--lambda")) s.lambda = a.lambda;
  if (given("--max-weight")) s.max_weight = a.max_weight;
  if (given("--sample")) s.sample = a.sample;
  if (given("--partner-attribute")) s.partner_attribute = a.partner_attribute;
  if (given("--partners")) s.partners = a.partners;
  if (given("--one-time-key")) s.one_time_key = a.one_time_key;
  if (given("--key-file")) s.key_file = a.key_file;
  if (given("--kernel")) s.kernel = a.kernel;
  if (given("--block")) s.block = a.block;
  if (a.method == "pis") {
    if (a.model.empty())
      throw UsageError("--method pis needs --model DIR (the checkpoint of `ppreid pis train`)");
    check_one_time_key(a);
  }
  return make_deidentifier(s);
}

void run(DeidArgs& a, const CLI::App& cmd) {
  auto method = make_method(a, cmd);
  a.run.in = a.in;
  a.run.out = a.out;
  if (!a.report.empty()) a.run.report = a.report;
  if (a.method == "pis") {
    // Image workers run the network concurrently: one LibTorch thread each.
    const int workers = a.run.threads > 0 ? a.run.threads
                                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    tensor::configure_torch_threads(workers > 1 ? 1 : 0);
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
  if (report.manifest.contains("certified_epsilon_per_image"))
    std::cout << "\n  epsilon per image " << report.manifest["epsilon_per_image"].dump()
              << ", certified " << report.manifest["certified_epsilon_per_image"].dump();
  std::cout << "\n  manifest: " << (a.run.out / kReleaseManifest).string() << "\n";
  if (a.run.report)
    std::cout << "  mean SSIM " << report.mean_ssim << ", mean PSNR " << report.mean_psnr
              << " dB against the raw images\n  quality report (keep it with the raw data, "
                 "never with the release): "
              << a.run.report->string() << "\n";
}

}  // namespace

void register_deid_commands(CLI::App& app) {
  auto a = std::make_shared<DeidArgs>();
  CLI::App* cmd = app.add_subcommand(
      "deid", "De-identify a dataset (PIS, image DP or a classic baseline) into a new directory");
  cmd->add_option("--method", a->method,
                  "pis, dp, blur, pixelate, quantize, remove-head, remove-body, none")
      ->required()
      ->check(CLI::IsMember(method_names()));
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
  cmd->add_option("--report", a->report,
                  "Write SSIM/PSNR against the raw images (per image and mean) to this file; it is "
                  "derived from the raw data, so it is refused inside --out");
  cmd->add_flag("--detectability", a->run.detectability,
                "With --report: also count how often the HOG people detector finds the person "
                "before and after");
  cmd->add_flag("--json", a->json, "Print the release manifest (deid.json) as JSON");
  cmd->callback([a, cmd] { run(*a, *cmd); });
}

}  // namespace ppreid::deid
