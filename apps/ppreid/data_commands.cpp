#include "apps/ppreid/commands.h"

#include <spdlog/spdlog.h>

#include <iostream>
#include <thread>

#include "core/data/dataset.h"
#include "core/data/summary.h"
#include "core/data/synth/generator.h"
#include "core/profile/profile.h"

namespace ppreid::data {
namespace {

struct SynthArgs {
  std::string out;
  std::string config;
  synth::SynthOptions options;
  bool force = false;
  bool json = false;
};

void run_synth(const SynthArgs& args, const CLI::App& cmd) {
  synth::SynthOptions o;
  if (!args.config.empty()) o = load_profile(find_profile(args.config)).synth;
  // Flags given on the command line win over the profile.
  auto given = [&](const char* flag) { return cmd.get_option(flag)->count() > 0; };
  const auto& a = args.options;
  if (given("--ids")) o.ids = a.ids;
  if (given("--cameras")) o.cameras = a.cameras;
  if (given("--images-per-id")) o.images_per_id = a.images_per_id;
  if (given("--height")) o.height = a.height;
  if (given("--width")) o.width = a.width;
  if (given("--municipalities")) o.municipalities = a.municipalities;
  if (given("--distractors")) o.distractors = a.distractors;
  if (given("--junk")) o.junk = a.junk;
  if (given("--seed")) o.seed = a.seed;
  if (given("--threads")) o.threads = a.threads;
  if (given("--jpeg-quality")) o.jpeg_quality = a.jpeg_quality;
  synth::validate(o);

  synth::SynthSummary s = synth::generate(o, args.out, args.force);
  // Read the result back through the public reader: what the user gets is what training sees.
  DatasetSummary summary = summarize(load_dataset(args.out));
  if (args.json) {
    nlohmann::json j = summary.to_json();
    j["seed"] = o.seed;
    j["seconds"] = s.seconds;
    int total = s.train_images + s.query_images + s.gallery_images;
    j["images_per_second"] = s.seconds > 0 ? total / s.seconds : 0.0;
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << "generated " << (s.train_images + s.query_images + s.gallery_images)
              << " images in " << s.seconds << " s (seed " << o.seed << ")\n"
              << summary.to_text();
  }
}

struct InspectArgs {
  std::string dir;
  bool json = false;
  bool quick = false;
  int threads = 0;
};

void run_inspect(const InspectArgs& args) {
  Dataset ds = load_dataset(args.dir);
  if (!args.quick) {
    int threads = args.threads > 0 ? args.threads
                                   : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    verify_images(ds, threads);
  }
  DatasetSummary summary = summarize(ds);
  if (args.json)
    std::cout << summary.to_json().dump(2) << "\n";
  else
    std::cout << summary.to_text();
}

}  // namespace

void register_data_commands(CLI::App& app) {
  auto synth_args = std::make_shared<SynthArgs>();
  CLI::App* synth = app.add_subcommand(
      "synth", "Generate the synthetic pedestrian dataset (Market-1501 layout + keypoints.csv, "
               "attributes.csv, municipalities.csv)");
  auto& o = synth_args->options;
  synth->add_option("--out", synth_args->out, "Output directory (must be new or empty)")
      ->required();
  synth->add_option("--config", synth_args->config,
                    "Profile (tiny, small, paper or a YAML path) giving the defaults");
  synth->add_option("--ids", o.ids, "Identities in total, half train and half test")
      ->check(CLI::Range(4, 100000));
  synth->add_option("--cameras", o.cameras, "Cameras in total")->check(CLI::Range(2, 999));
  synth->add_option("--images-per-id", o.images_per_id, "Images of each identity")
      ->check(CLI::Range(4, 10000));
  synth->add_option("--height", o.height, "Image height in pixels")->check(CLI::Range(32, 1024));
  synth->add_option("--width", o.width, "Image width in pixels")->check(CLI::Range(16, 1024));
  synth->add_option("--municipalities", o.municipalities,
                    "Municipalities (disjoint identities, cameras split among them)")
      ->check(CLI::Range(1, 499));
  synth->add_option("--distractors", o.distractors, "pid-0 gallery images")
      ->check(CLI::Range(0, 1000000));
  synth->add_option("--junk", o.junk, "pid -1 images (dropped by readers)")
      ->check(CLI::Range(0, 1000000));
  synth->add_option("--jpeg-quality", o.jpeg_quality, "JPEG quality")->check(CLI::Range(1, 100));
  synth->add_option("--seed", o.seed, "Random seed (same seed, same bytes)");
  synth->add_option("--threads", o.threads, "Worker threads (0 = all cores)")
      ->check(CLI::Range(0, 256));
  synth->add_flag("--force", synth_args->force, "Replace a non-empty output directory");
  synth->add_flag("--json", synth_args->json, "Print the summary as JSON");
  synth->callback([synth_args, synth] { run_synth(*synth_args, *synth); });

  CLI::App* data = app.add_subcommand("data", "Inspect datasets");
  data->require_subcommand(1);
  auto inspect_args = std::make_shared<InspectArgs>();
  CLI::App* inspect = data->add_subcommand(
      "inspect", "Count images, identities and cameras per split and side-file coverage");
  inspect->add_option("dir", inspect_args->dir, "Dataset root (Market-1501 or DukeMTMC layout)")
      ->required();
  inspect->add_flag("--json", inspect_args->json, "Print JSON");
  inspect->add_flag("--quick", inspect_args->quick, "Skip decoding every image");
  inspect->add_option("--threads", inspect_args->threads, "Decoding threads (0 = all cores)")
      ->check(CLI::Range(0, 256));
  inspect->callback([inspect_args] { run_inspect(*inspect_args); });
}

}  // namespace ppreid::data
