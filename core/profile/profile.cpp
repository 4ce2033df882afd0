#include "core/profile/profile.h"

#include <unistd.h>

#include <array>
#include <vector>

#include "core/util/config.h"
#include "core/util/error.h"

namespace ppreid {
namespace fs = std::filesystem;
namespace {

void read_triplet(util::ConfigReader& r, const std::string& key, std::array<float, 3>& out,
                  float lo, float hi) {
  if (!r.has(key)) return;
  std::vector<float> values;
  r.get(key, values);
  if (values.size() != 3) r.fail(key, "expected a list of 3 numbers (R, G, B)");
  for (size_t i = 0; i < 3; ++i) {
    if (values[i] < lo || values[i] > hi)
      r.fail(key, "value " + std::to_string(values[i]) + " is out of range [" +
                      std::to_string(lo) + ", " + std::to_string(hi) + "]");
    out[i] = values[i];
  }
}

}  // namespace

void read_profile_sections(util::ConfigReader& root, Profile& p) {
  root.get("name", p.name);

  auto runtime = root.section("runtime");
  runtime.get("threads", p.runtime.threads, 0, 1024);
  runtime.get("seed", p.runtime.seed);
  runtime.finish();

  // One image size drives both the generator and the model input.
  auto image = root.section("image");
  int height = p.transform.height, width = p.transform.width;
  image.get("height", height, 32, 1024);
  image.get("width", width, 16, 1024);
  image.finish();
  p.transform.height = p.synth.height = height;
  p.transform.width = p.synth.width = width;

  auto synth = root.section("synth");
  synth.get("ids", p.synth.ids, 4, 100000);
  synth.get("cameras", p.synth.cameras, 2, 999);
  synth.get("images_per_id", p.synth.images_per_id, 4, 10000);
  synth.get("municipalities", p.synth.municipalities, 1, 499);
  synth.get("distractors", p.synth.distractors, 0, 1000000);
  synth.get("junk", p.synth.junk, 0, 1000000);
  synth.get("lookalike_fraction", p.synth.lookalike_fraction, 0.0, 1.0);
  synth.get("jpeg_quality", p.synth.jpeg_quality, 1, 100);
  synth.finish();
  if (p.synth.cameras < 2 * p.synth.municipalities)
    synth.fail("cameras", "each of the " + std::to_string(p.synth.municipalities) +
                              " municipalities needs at least 2 cameras; raise cameras to " +
                              std::to_string(2 * p.synth.municipalities));

  auto transform = root.section("transform");
  transform.get("flip_prob", p.transform.flip_prob, 0.0, 1.0);
  transform.get("pad", p.transform.pad, 0, 256);
  transform.get("erasing_prob", p.transform.erasing_prob, 0.0, 1.0);
  transform.get("erasing_area_min", p.transform.erasing_area_min, 0.0, 1.0);
  transform.get("erasing_area_max", p.transform.erasing_area_max, 0.0, 1.0);
  transform.get("erasing_aspect_min", p.transform.erasing_aspect_min, 0.01, 1.0);
  read_triplet(transform, "mean", p.transform.mean, 0.f, 1.f);
  read_triplet(transform, "std", p.transform.std, 1e-6f, 10.f);
  transform.finish();
  if (p.transform.erasing_area_min > p.transform.erasing_area_max)
    transform.fail("erasing_area_min", "must not exceed erasing_area_max");

  auto loader = root.section("loader");
  loader.get("p", p.loader.p, 1, 4096);
  loader.get("k", p.loader.k, 1, 1024);
  loader.get("workers", p.loader.workers, 0, 256);
  loader.get("prefetch_batches", p.loader.prefetch_batches, 1, 1024);
  loader.finish();

  p.synth.seed = p.loader.seed = p.runtime.seed;
}

namespace {

Profile parse(util::ConfigReader root) {
  Profile p;
  read_profile_sections(root, p);
  root.finish();
  return p;
}

}  // namespace

Profile load_profile(const fs::path& file) {
  Profile p = parse(util::ConfigReader::from_file(file));
  p.source = file.string();
  return p;
}

Profile parse_profile(const std::string& yaml, const std::string& file_label) {
  Profile p = parse(util::ConfigReader::from_string(yaml, file_label));
  p.source = file_label;
  return p;
}

fs::path find_profile(const std::string& name_or_path) {
  fs::path given(name_or_path);
  if (fs::exists(given)) return given;
  if (given.has_extension() || given.has_parent_path())
    throw Error("config file '" + name_or_path + "' does not exist");
  std::vector<fs::path> roots = {fs::current_path()};
  std::array<char, 4096> exe{};
  ssize_t n = ::readlink("/proc/self/exe", exe.data(), exe.size() - 1);
  if (n > 0) {
    fs::path bin = fs::path(std::string(exe.data(), static_cast<size_t>(n))).parent_path();
    roots.push_back(bin.parent_path());                  // build/ppreid -> source tree
    roots.push_back(bin.parent_path() / "share/ppreid");  // installed layout
  }
  for (const auto& root : roots) {
    fs::path candidate = root / "configs" / (name_or_path + ".yaml");
    if (fs::exists(candidate)) return candidate;
  }
  throw Error("no profile named '" + name_or_path + "': expected configs/" + name_or_path +
              ".yaml (profiles: tiny, small, paper) or a path to a YAML file");
}

}  // namespace ppreid
