#include "core/data/synth/generator.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <exception>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <sstream>
#include <thread>
#include <vector>

#include "core/data/attributes.h"
#include "core/data/dataset.h"
#include "core/data/keypoints.h"
#include "core/data/synth/plan.h"
#include "core/data/synth/renderer.h"
#include "core/data/synth/scene.h"
#include "core/util/atomic_file.h"
#include "core/util/error.h"
#include "core/util/rng.h"

namespace ppreid::data::synth {
namespace fs = std::filesystem;
namespace {

constexpr std::uint64_t kCameraStream = 0x63616d657261ULL;
// Images of one identity in one camera mostly share the walking direction, as in real tracklets.
constexpr double kTrackletViewP = 0.75;

void require(bool ok, const std::string& message) {
  if (!ok) throw UsageError(message);
}

std::string got(int value) { return " (got " + std::to_string(value) + ")"; }

ImageParams params_for(const PlannedImage& job, const CameraStyle& style, util::Rng& rng,
                       int height, int width) {
  ImageParams p = sample_image_params(style, rng, height, width);
  switch (job.kind) {
    case ImageKind::kIdentity: {
      util::Rng tracklet(job.tracklet_seed);
      const View usual = sample_view(style, tracklet);
      if (rng.bernoulli(kTrackletViewP)) p.view = usual;
      break;
    }
    case ImageKind::kDistractor:
      if (rng.bernoulli(0.4)) {
        // Empty background (a false detection), often with some object in it.
        p.person = false;
        if (p.occluder == Occluder::kNone && rng.bernoulli(0.5)) {
          p.occluder = rng.bernoulli(0.5) ? Occluder::kPole : Occluder::kCar;
          p.occluder_position = rng.uniform();
          p.occluder_size = rng.uniform();
        }
      } else {
        // A body fragment: a stranger framed far too close, so only part of them shows.
        p.person_height = rng.uniform(1.5, 2.6);
        p.feet_y = rng.uniform(0.8, 2.2);
        p.center_x = rng.uniform(0.2, 0.8);
      }
      break;
    case ImageKind::kJunk:
      if (rng.bernoulli(0.5)) {
        p.person_height = rng.uniform(0.3, 0.55);
        p.center_x = rng.uniform(0.15, 0.85);
        p.feet_y = rng.uniform(0.45, 1.0);
      } else {
        p.center_x = rng.bernoulli(0.5) ? rng.uniform(-0.05, 0.12) : rng.uniform(0.88, 1.05);
        p.blur_sigma = rng.uniform(1.5, 3.0) * height / 128.0;
      }
      break;
  }
  return p;
}

void write_bytes(const fs::path& path, const std::vector<uchar>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error("cannot create '" + path.string() + "' (check permissions)");
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) throw Error("cannot write '" + path.string() + "' (disk full?)");
}

// Renders and writes every planned image with `threads` workers; poses[i] receives image i's
// keypoints. Work is handed out by index, and each image depends only on its own seed, so the
// files do not depend on which worker renders what.
void render_all(const SynthOptions& o, const DatasetPlan& plan,
                const std::vector<CameraStyle>& styles, const fs::path& root, int threads,
                std::vector<Pose>& poses) {
  poses.assign(plan.images.size(), Pose{});
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  const std::vector<int> jpeg{cv::IMWRITE_JPEG_QUALITY, o.jpeg_quality};

  auto work = [&] {
    std::vector<uchar> encoded;
    IdentityTraits stranger;
    for (;;) {
      const std::size_t i = next.fetch_add(1);
      if (i >= plan.images.size() || failed.load()) return;
      try {
        const PlannedImage& job = plan.images[i];
        const CameraStyle& style = styles[static_cast<std::size_t>(job.camera)];
        util::Rng rng(job.seed);
        const ImageParams params = params_for(job, style, rng, o.height, o.width);
        const IdentityTraits* traits = &stranger;
        if (job.identity >= 0) {
          traits = &plan.identities[static_cast<std::size_t>(job.identity)].traits;
        } else {
          stranger = sample_traits(rng);
        }
        RenderedImage r = render_image(*traits, style, params, o.height, o.width, rng);
        if (!cv::imencode(".jpg", r.image, encoded, jpeg))
          throw Error("OpenCV could not encode '" + job.path + "' as JPEG");
        write_bytes(root / job.path, encoded);
        poses[i] = r.pose;
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        failed.store(true);
        return;
      }
    }
  };

  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

std::string municipalities_csv(const DatasetPlan& plan) {
  std::ostringstream out;
  out << "camera,municipality\n";
  for (std::size_t c = 0; c < plan.camera_municipality.size(); ++c)
    out << c + 1 << "," << plan.camera_municipality[c] + 1 << "\n";
  return out.str();
}

std::string synth_json(const SynthOptions& o, const SynthSummary& s, const DatasetPlan& plan) {
  // `threads` and timings are left out on purpose: they must not change the bytes written.
  nlohmann::ordered_json j;
  j["generator"] = "ppreid synthetic pedestrians";
  j["format_version"] = 1;
  j["layout"] = "market1501";
  j["options"] = {{"seed", o.seed},
                  {"ids", o.ids},
                  {"cameras", o.cameras},
                  {"municipalities", o.municipalities},
                  {"images_per_id", o.images_per_id},
                  {"height", o.height},
                  {"width", o.width},
                  {"distractors", o.distractors},
                  {"junk", o.junk},
                  {"lookalike_fraction", o.lookalike_fraction},
                  {"jpeg_quality", o.jpeg_quality}};
  int lookalikes = 0;
  for (const PlannedIdentity& id : plan.identities) lookalikes += id.lookalike_of > 0;
  j["counts"] = {{"train_images", s.train_images},
                 {"query_images", s.query_images},
                 {"gallery_images", s.gallery_images},
                 {"train_ids", s.train_ids},
                 {"test_ids", s.test_ids},
                 {"cameras", s.cameras},
                 {"municipalities", s.municipalities},
                 {"distractors", o.distractors},
                 {"junk", o.junk},
                 {"lookalike_ids", lookalikes}};
  return j.dump(2) + "\n";
}

// One syncfs() makes every image durable before the directory is published; fsyncing thousands
// of small files one by one would dominate the run time.
void sync_filesystem(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) throw Error("cannot open '" + dir.string() + "' to flush it to disk");
  const int rc = ::syncfs(fd);
  ::close(fd);
  if (rc != 0) throw Error("cannot flush '" + dir.string() + "' to disk (disk full or I/O error)");
}

void sync_directory(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  // Some filesystems refuse fsync on directories; the renames are still atomic.
  (void)::fsync(fd);
  ::close(fd);
}

bool non_empty_dir(const fs::path& dir) {
  return fs::is_directory(dir) && fs::directory_iterator(dir) != fs::directory_iterator();
}

}  // namespace

void validate(const SynthOptions& o) {
  require(o.ids >= 4, "--ids must be >= 4" + got(o.ids));
  require(o.ids <= 9999,
          "--ids must be <= 9999 so person ids fit Market-1501's 4-digit names" + got(o.ids));
  require(o.municipalities >= 1, "--municipalities must be >= 1" + got(o.municipalities));
  require(o.cameras >= 2 * o.municipalities,
          "--cameras must be >= 2 * --municipalities so every identity appears in two cameras of "
          "its municipality (got cameras=" +
              std::to_string(o.cameras) + ", municipalities=" + std::to_string(o.municipalities) +
              ")");
  // The reader accepts up to three camera digits (c10s1_...), beyond Market-1501's one digit.
  require(o.cameras <= 999, "--cameras must be <= 999" + got(o.cameras));
  require(o.ids >= 2 * o.municipalities,
          "--ids must be >= 2 * --municipalities so every municipality has a training and a test "
          "identity (got ids=" +
              std::to_string(o.ids) + ", municipalities=" + std::to_string(o.municipalities) + ")");
  require(o.images_per_id >= 4,
          "--images-per-id must be >= 4 so every test identity has queries and cross-camera "
          "gallery images" +
              got(o.images_per_id));
  require(o.images_per_id <= 10000, "--images-per-id must be <= 10000" + got(o.images_per_id));
  require(o.height >= 32, "--height must be >= 32 pixels" + got(o.height));
  require(o.height <= 2048, "--height must be <= 2048 pixels" + got(o.height));
  require(o.width >= 16, "--width must be >= 16 pixels" + got(o.width));
  require(o.width <= 2048, "--width must be <= 2048 pixels" + got(o.width));
  require(o.distractors >= 0, "--distractors must be >= 0" + got(o.distractors));
  require(o.junk >= 0, "--junk must be >= 0" + got(o.junk));
  require(std::isfinite(o.lookalike_fraction) && o.lookalike_fraction >= 0.0 &&
              o.lookalike_fraction <= 1.0,
          "--lookalike-fraction must be between 0 and 1 (got " +
              std::to_string(o.lookalike_fraction) + ")");
  require(o.jpeg_quality >= 1 && o.jpeg_quality <= 100,
          "--jpeg-quality must be between 1 and 100" + got(o.jpeg_quality));
  require(o.threads >= 0, "--threads must be >= 0 (0 = all cores)" + got(o.threads));
}

SynthSummary generate(const SynthOptions& o, const fs::path& out_dir, bool overwrite) {
  validate(o);
  const auto start = std::chrono::steady_clock::now();
  if (out_dir.empty()) throw UsageError("synthetic dataset: the output directory is empty");
  fs::path target = fs::absolute(out_dir).lexically_normal();
  // "out/" names the directory "out": drop the trailing separator's empty last component.
  if (target.filename().empty()) target = target.parent_path();
  const fs::path parent = target.parent_path();
  const std::string name = target.filename().string();
  if (name.empty() || name == "." || name == "..")
    throw UsageError("synthetic dataset: '" + out_dir.string() +
                     "' cannot be the output directory; name a directory to create");
  if (fs::exists(target) && !fs::is_directory(target))
    throw Error("cannot write the synthetic dataset to '" + target.string() +
                "': it exists and is not a directory; choose another output path");
  if (non_empty_dir(target) && !overwrite)
    throw Error("output directory '" + target.string() +
                "' exists and is not empty; choose another path, or replace it with `ppreid synth "
                "--force`");

  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec)
    throw Error("cannot create '" + parent.string() +
                "' for the synthetic dataset: " + ec.message());
  // Unique per call, so concurrent generate() calls never share a staging directory; the name
  // never reaches the dataset, so it does not affect determinism.
  static std::atomic<unsigned> calls{0};
  const std::string suffix = std::to_string(::getpid()) + "-" + std::to_string(calls++);
  const fs::path staging = parent / ("." + name + ".synth-tmp-" + suffix);
  fs::remove_all(staging, ec);

  SynthSummary summary;
  try {
    for (SplitKind split : {SplitKind::kTrain, SplitKind::kQuery, SplitKind::kGallery})
      fs::create_directories(staging / split_dir(split));

    const DatasetPlan plan = plan_dataset(o);
    std::vector<CameraStyle> styles;
    styles.reserve(static_cast<std::size_t>(o.cameras));
    for (int c = 0; c < o.cameras; ++c) {
      util::Rng rng(util::Rng::derive(util::Rng::derive(o.seed, kCameraStream),
                                      static_cast<std::uint64_t>(c)));
      styles.push_back(sample_camera_style(rng, o.height, o.width));
    }

    int threads = o.threads > 0 ? o.threads : static_cast<int>(std::thread::hardware_concurrency());
    threads = std::clamp(threads, 1, std::max<int>(1, static_cast<int>(plan.images.size())));
    std::vector<Pose> poses;
    render_all(o, plan, styles, staging, threads, poses);

    std::vector<std::pair<std::string, Pose>> rows;
    rows.reserve(plan.images.size());
    for (std::size_t i = 0; i < plan.images.size(); ++i) {
      const PlannedImage& img = plan.images[i];
      rows.emplace_back(img.path, poses[i]);
      switch (img.split) {
        case SplitKind::kTrain:
          ++summary.train_images;
          break;
        case SplitKind::kQuery:
          ++summary.query_images;
          break;
        case SplitKind::kGallery:
          // Distractors and junk are reported by the options, not as identity images.
          if (img.kind == ImageKind::kIdentity) ++summary.gallery_images;
          break;
      }
    }
    std::sort(rows.begin(), rows.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    AttributeTable attributes;
    for (const PlannedIdentity& id : plan.identities) {
      attributes[id.pid] = to_attributes(id.traits);
      (id.train ? summary.train_ids : summary.test_ids) += 1;
    }
    summary.cameras = o.cameras;
    summary.municipalities = o.municipalities;

    util::write_file_atomic(staging / "keypoints.csv", format_keypoints_csv(rows));
    util::write_file_atomic(staging / "attributes.csv", format_attributes_csv(attributes));
    util::write_file_atomic(staging / "municipalities.csv", municipalities_csv(plan));
    util::write_file_atomic(staging / "synth.json", synth_json(o, summary, plan));
    sync_filesystem(staging);

    // Publish: the old dataset (if any) is moved aside only now that the new one is complete.
    if (non_empty_dir(target) && !overwrite)
      throw Error("output directory '" + target.string() +
                  "' was filled by someone else while generating; choose another path");
    if (fs::exists(target)) {
      const fs::path old = parent / ("." + name + ".synth-old-" + suffix);
      fs::remove_all(old);
      fs::rename(target, old);
      fs::rename(staging, target);
      fs::remove_all(old);
    } else {
      fs::rename(staging, target);
    }
    sync_directory(parent);
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(staging, ec);
    throw Error("writing the synthetic dataset to '" + target.string() + "' failed: " + e.what() +
                " (check free space and permissions)");
  } catch (...) {
    fs::remove_all(staging, ec);
    throw;
  }
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace ppreid::data::synth
