#include "core/deid/deid_runner.h"

#include <spdlog/spdlog.h>

#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <set>
#include <thread>

#include "core/deid/image_dp.h"
#include "core/quality/detectability.h"
#include "core/quality/image_quality.h"
#include "core/util/atomic_file.h"
#include "core/util/error.h"
#include "core/util/image.h"
#include "core/util/paths.h"
#include "core/util/progress.h"
#include "core/util/version.h"

namespace ppreid::deid {
namespace fs = std::filesystem;
namespace {

constexpr const char* kPartialMarker = "deid.partial.json";
const char* kSideFiles[] = {"keypoints.csv", "attributes.csv", "municipalities.csv"};

void check_paths(const fs::path& in, const fs::path& out) {
  if (fs::weakly_canonical(in) == fs::weakly_canonical(out)) throw UsageError("--out is the same directory as --in; the input is never overwritten");
  if (util::path_within(out, in))
    throw UsageError("--out '" + out.string() + "' is inside --in '" + in.string() +
                     "'; choose a directory outside the input (nothing was written)");
  if (util::path_within(in, out))
    throw UsageError("--in '" + in.string() + "' is inside --out '" + out.string() +
                     "'; choose another output directory (nothing was written)");
}

void check_report_path(const fs::path& report, const fs::path& out) {
  if (report.empty() || fs::is_directory(report))
    throw UsageError("--report '" + report.string() + "' must name a file (the quality report), "
                     "not a directory");
  if (util::path_within(report, out) || fs::weakly_canonical(report) == fs::weakly_canonical(out))
    throw UsageError("--report '" + report.string() + "' is inside --out '" + out.string() +
                     "': the report is computed from the raw images and must not travel with "
                     "the release; write it elsewhere (nothing was written)");
}

bool dir_has_entries(const fs::path& dir) {
  return fs::is_directory(dir) && fs::directory_iterator(dir) != fs::directory_iterator();
}

nlohmann::json run_identity(const Deidentifier& method) {
  return {{"method", method.name()}, {"parameters", method.parameters()}};
}

struct ImageRow {
  std::string path;  // the output path
  int width = 0, height = 0;
  double ssim = 0, psnr = 0;
  bool done = false;
  std::optional<std::string> skipped;  // why the image is not released
};

// A method's output path must be a plain relative path in the image's own split directory whose
// file name still follows the layout (or the released dataset would not load).
void check_output_path(const Deidentifier& method, const data::Dataset& ds,
                       const data::ImageRecord& r, const std::string& out) {
  fs::path p(out);
  bool plain = !out.empty() && p.is_relative() &&
               std::none_of(p.begin(), p.end(), [](const fs::path& part) {
                 return part == ".." || part == "." || part.empty();
               });
  std::string where = "method '" + method.name() + "' names the output of '" + r.path + "' '" +
                      out + "'";
  if (!plain || p.parent_path() != fs::path(r.path).parent_path())
    throw Error(where + ", which is not in the image's split directory '" +
                fs::path(r.path).parent_path().string() + "'; nothing was written");
  auto name = data::parse_image_name(ds.layout, p.filename().string());
  if (!name || name->pid < 0)
    throw Error(where + ", which is not a " + std::string(data::layout_name(ds.layout)) +
                " image name; nothing was written");
}

// What the run will release: output paths, skipped images, and the order to process them in.
struct ReleasePlan {
  std::vector<std::string> out_paths;               // per record
  std::vector<std::optional<std::string>> skipped;  // per record
  std::vector<size_t> order;  // records sorted by output path (see below)
  int skipped_count = 0;
  int renamed = 0;
};

ReleasePlan plan_release(const Deidentifier& method, const data::Dataset& ds,
                         const std::vector<const data::ImageRecord*>& records) {
  ReleasePlan plan;
  std::map<std::string, size_t> owner;
  for (size_t i = 0; i < records.size(); ++i) {
    const data::ImageRecord& r = *records[i];
    plan.skipped.push_back(method.skip_reason({&r, ds.pose(r), i}));
    plan.out_paths.push_back(method.output_path(r));
    const std::string& out = plan.out_paths.back();
    if (plan.skipped.back()) {
      ++plan.skipped_count;
      continue;
    }
    check_output_path(method, ds, r, out);
    plan.renamed += out != r.path ? 1 : 0;
    auto [it, fresh] = owner.emplace(out, i);
    if (!fresh)
      throw Error("method '" + method.name() + "' maps both '" + records[it->second]->path +
                  "' and '" + r.path + "' to '" + out + "'; nothing was written");
  }
  // Work and listings follow the output names, not the original ones: with renamed identities,
  // the original order (file times, row order of the CSV files) would hint at the original labels.
  plan.order.resize(records.size());
  for (size_t i = 0; i < records.size(); ++i) plan.order[i] = i;
  std::sort(plan.order.begin(), plan.order.end(),
            [&](size_t a, size_t b) { return plan.out_paths[a] < plan.out_paths[b]; });
  return plan;
}

// --resume must not finish a run whose outputs were named differently (a PIS plan drawn again):
// that would release the same person twice under two labels.
void check_resumable_outputs(const fs::path& out, const ReleasePlan& plan) {
  std::set<std::string> expected;
  for (size_t i = 0; i < plan.out_paths.size(); ++i)
    if (!plan.skipped[i]) expected.insert(plan.out_paths[i]);
  for (auto kind : {data::SplitKind::kTrain, data::SplitKind::kQuery, data::SplitKind::kGallery}) {
    fs::path dir = out / data::split_dir(kind);
    if (!fs::is_directory(dir)) continue;
    for (const auto& entry : fs::directory_iterator(dir)) {
      std::string name = entry.path().filename().string();
      if (name.empty() || name[0] == '.') continue;  // temporary files of an atomic write
      std::string rel = std::string(data::split_dir(kind)) + "/" + name;
      if (!expected.count(rel))
        throw Error("--resume: '" + (out / rel).string() +
                    "' is not among the images this run would write (the method now names or "
                    "selects images differently, e.g. a new random identity shift); finishing "
                    "would release people twice: start again with a new --out");
    }
  }
}

}  // namespace

DeidReport deidentify_dataset(Deidentifier& method, const DeidRunOptions& options) {
  check_paths(options.in, options.out);
  if (options.report) check_report_path(*options.report, options.out);
  if (options.detectability && !options.report)
    throw UsageError("--detectability measures the raw images too; it needs --report FILE "
                     "(outside --out) to write its figures to");
  const bool measure = options.report.has_value();
  // A site's raw data may be a train split alone, a held-out test set query and gallery alone.
  data::Dataset ds = data::load_dataset(options.in, data::present_splits(options.in));
  const nlohmann::json identity = run_identity(method);

  if (dir_has_entries(options.out)) {
    fs::path marker = options.out / kPartialMarker;
    if (!options.resume)
      throw Error("output directory '" + options.out.string() + "' is not empty; " +
                  (fs::exists(marker) ? "it holds an interrupted run: add --resume to finish it"
                                      : "choose a new directory"));
    if (!fs::exists(marker))
      throw Error("--resume: '" + options.out.string() + "' has no " + kPartialMarker +
                  ", so it is not an interrupted run of `ppreid deid`");
    if (nlohmann::json::parse(util::read_file(marker)) != identity)
      throw Error("--resume: the interrupted run in '" + options.out.string() +
                  "' used a different method or parameters; use the same flags or a new --out");
  }
  method.prepare(ds);
  std::vector<const data::ImageRecord*> records;
  for (const auto* split : {&ds.train, &ds.query, &ds.gallery})
    for (const auto& r : *split) records.push_back(&r);
  const ReleasePlan release = plan_release(method, ds, records);
  if (options.resume) check_resumable_outputs(options.out, release);

  for (auto kind : {data::SplitKind::kTrain, data::SplitKind::kQuery, data::SplitKind::kGallery})
    if (!ds.split(kind).empty()) fs::create_directories(options.out / data::split_dir(kind));
  util::write_file_atomic(options.out / kPartialMarker, identity.dump(2));

  std::vector<ImageRow> rows(records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    rows[i].path = release.out_paths[i];
    rows[i].skipped = release.skipped[i];
  }

  const int threads = options.threads > 0
                          ? options.threads
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::atomic<int> resumed{0}, before{0}, after{0};
  std::mutex error_mu;
  std::exception_ptr error;
  util::Progress progress(static_cast<std::int64_t>(records.size()), "deid " + method.name());
  quality::PeopleDetector detector;

  const size_t batch = static_cast<size_t>(std::max(1, method.preferred_batch()));
  auto work = [&] {
    for (size_t first = next.fetch_add(batch); first < records.size() && !failed;
         first = next.fetch_add(batch)) {
      try {
        // Decode the chunk; skipped and already released images drop out here.
        std::vector<size_t> pending;
        std::vector<cv::Mat> originals;
        std::vector<ImageContext> contexts;
        for (size_t n = first; n < std::min(records.size(), first + batch); ++n) {
          const size_t i = release.order[n];
          const data::ImageRecord& r = *records[i];
          ImageRow& row = rows[i];
          if (row.skipped) {
            progress.tick();
            continue;
          }
          cv::Mat original = util::decode_image(ds.absolute(r));
          row.width = original.cols;
          row.height = original.rows;
          if (options.resume && fs::exists(options.out / row.path)) {
            // Never release an image twice: a second noisy copy would compose epsilon.
            ++resumed;
            progress.tick();
            continue;
          }
          pending.push_back(i);
          originals.push_back(std::move(original));
          contexts.push_back({&r, ds.pose(r), i});
        }
        if (pending.empty()) continue;
        std::vector<cv::Mat> released = pending.size() == 1
                                            ? std::vector<cv::Mat>{method.apply(originals[0], contexts[0])}
                                            : method.apply_batch(originals, contexts);
        if (released.size() != pending.size())
          throw Error("method '" + method.name() + "' returned " + std::to_string(released.size()) +
                      " images for " + std::to_string(pending.size()));
        for (size_t j = 0; j < pending.size(); ++j) {
          const size_t i = pending[j];
          const cv::Mat& original = originals[j];
          ImageRow& row = rows[i];
          const fs::path target = options.out / row.path;
          if (released[j].size() != original.size() || released[j].type() != original.type())
            throw Error("method '" + method.name() + "' changed the size or type of " +
                        records[i]->path);
          std::string ext = target.extension().string();
          std::vector<int> params;
          if (ext == ".jpg" || ext == ".jpeg") params = {cv::IMWRITE_JPEG_QUALITY, options.jpeg_quality};
          std::vector<std::uint8_t> bytes;
          if (!cv::imencode(ext, released[j], bytes, params))
            throw Error("cannot encode '" + target.string() + "' as " + ext);
          util::write_file_atomic(target, std::string_view(reinterpret_cast<const char*>(bytes.data()),
                                                           bytes.size()));
          if (measure) {
            row.ssim = original.rows >= 11 && original.cols >= 11
                           ? quality::ssim(original, released[j])
                           : std::nan("");
            row.psnr = quality::psnr(original, released[j]);
          }
          row.done = true;
          if (options.detectability) {
            before += detector.person_in_crop(original) ? 1 : 0;
            after += detector.person_in_crop(released[j]) ? 1 : 0;
          }
          progress.tick();
        }
      } catch (...) {
        std::lock_guard lock(error_mu);
        if (!error) error = std::current_exception();
        failed = true;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(work);
  for (auto& t : pool) t.join();
  progress.finish();
  if (error) {
    // Bad input (an unreadable image, a method failure) leaves nothing behind: remove what this
    // run wrote. Only a killed process leaves complete images and the marker for --resume.
    for (size_t i = 0; i < rows.size(); ++i)
      if (rows[i].done) fs::remove(options.out / rows[i].path);
    if (!options.resume) {
      for (const auto& entry : fs::directory_iterator(options.out)) fs::remove_all(entry.path());
    }
    std::rethrow_exception(error);
  }

  // Side files. keypoints.csv follows the renamed images and loses the rows of skipped ones;
  // attributes.csv describes the original identities and goes only where they are kept; a
  // method may withhold any of them (image DP: everything derived from the raw images).
  nlohmann::json dropped = nlohmann::json::array();
  for (const char* side : kSideFiles) {
    const fs::path from = options.in / side;
    if (!fs::exists(from)) continue;
    if (!method.releases_side_file(side)) {
      dropped.push_back(side);
      continue;
    }
    const bool changed = release.renamed > 0 || release.skipped_count > 0;
    if (side == std::string("keypoints.csv") && changed) {
      std::vector<std::pair<std::string, data::Pose>> kept;
      for (size_t i : release.order)
        if (!rows[i].skipped)
          if (const data::Pose* pose = ds.pose(*records[i])) kept.emplace_back(rows[i].path, *pose);
      util::write_file_atomic(options.out / side, data::format_keypoints_csv(kept));
      continue;
    }
    util::write_file_atomic(options.out / side, util::read_file(from));
  }

  DeidReport report;
  report.seconds = progress.seconds();
  report.resumed = resumed;
  auto* dp = dynamic_cast<ImageDp*>(&method);
  double ssim_sum = 0, psnr_sum = 0;
  int ssim_n = 0, psnr_n = 0;
  std::map<std::pair<int, int>, int> sizes;
  nlohmann::json skipped = nlohmann::json::array(), measured = nlohmann::json::array();
  auto number_or_null = [](double v) {
    return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
  };
  for (size_t i : release.order) {
    const ImageRow& row = rows[i];
    if (row.skipped) {
      skipped.push_back({{"image", row.path}, {"reason", *row.skipped}});
      continue;
    }
    ++sizes[{row.width, row.height}];
    if (!row.done) continue;
    ++report.images;
    if (!measure) continue;
    if (std::isfinite(row.ssim)) ssim_sum += row.ssim, ++ssim_n;
    if (std::isfinite(row.psnr)) psnr_sum += row.psnr, ++psnr_n;
    measured.push_back({{"image", row.path},
                        {"width", row.width},
                        {"height", row.height},
                        {"ssim", number_or_null(row.ssim)},
                        {"psnr_db", number_or_null(row.psnr)}});
  }
  report.mean_ssim = ssim_n ? ssim_sum / ssim_n : std::nan("");
  report.mean_psnr = psnr_n ? psnr_sum / psnr_n : std::nan("");

  // The manifest travels with the release: every field below is fixed by the method, its
  // parameters, the file names and sizes and the counts, so two datasets with the same names and
  // sizes get the same manifest whatever their pixels (tests/core/deid/release_contents_test).
  const bool seeded = method.seeded();
  nlohmann::json m = identity;
  m["software"] = {{"name", "ppreid"}, {"version", software_version()}};
  m["private"] = !seeded;
  if (seeded)
    m["private_note"] =
        "seeded run for experiments: the noise can be regenerated from the seed, so this "
        "folder carries no privacy guarantee; never share it as a release";
  m["layout"] = data::layout_name(ds.layout);
  m["images"] = static_cast<int>(records.size()) - release.skipped_count;
  m["renamed_images"] = release.renamed;
  m["skipped_count"] = release.skipped_count;
  m["skipped"] = skipped;
  if (!dropped.empty()) m["dropped_side_files"] = dropped;
  if (release.skipped_count > 0)
    spdlog::warn("{} of {} images were not released (method '{}' could not de-identify them); "
                 "deid.json lists them under \"skipped\"",
                 release.skipped_count, records.size(), method.name());
  m["released_this_run"] = report.images;
  m["resumed"] = report.resumed;
  if (dp) {
    const ImageDpOptions& o = dp->options();
    nlohmann::json per_size = nlohmann::json::array();
    double certified_max = 0;
    for (const auto& [wh, count] : sizes) {
      const double certified = dp->certified_epsilon(wh.first, wh.second);
      certified_max = std::max(certified_max, certified);
      per_size.push_back({{"width", wh.first},
                          {"height", wh.second},
                          {"images", count},
                          {"blocks", blocks_of(wh.first, wh.second, o.pixel_bits)},
                          {"delta", sensitivity(o, wh.first, wh.second)},
                          {"l1_sensitivity", l1_sensitivity(o, wh.first, wh.second)},
                          {"certified_epsilon", number_or_null(certified)}});
    }
    m["epsilon_per_image"] = m["parameters"]["epsilon"];
    m["certified_epsilon_per_image"] =
        std::isinf(o.epsilon) ? nlohmann::json("inf") : nlohmann::json(certified_max);
    m["certificate"] =
        "computed from the integer tables the sampler draws from: the largest log-ratio of a "
        "release's probability under two input levels, per level of distance, times the L1 "
        "sensitivity (3 values per block, each moving by at most L-1 levels)";
    m["sensitivity"] = per_size;
    m["release"] =
        "each image is released once under epsilon-image DP; releasing the same image again "
        "composes (the epsilons add up)";
  }
  report.manifest = m;

  if (measure) {
    nlohmann::json q = {
        {"derived_from_raw_data", true},
        {"note",
         "quality of a de-identified release measured against the raw images it came from; "
         "computed from raw pixels, so it stays with the data owner and never goes with the "
         "release"},
        {"method", identity["method"]},
        {"parameters", identity["parameters"]},
        {"input", options.in.string()},
        {"release", options.out.string()},
        {"seconds", report.seconds},
        {"images_measured", report.images},
        {"mean_ssim", number_or_null(report.mean_ssim)},
        {"mean_psnr_db", number_or_null(report.mean_psnr)},
        {"images", measured}};
    if (options.detectability) {
      quality::Detectability d{before, after, report.images};
      q["detectability"] = {{"detected_before", d.detected_before},
                            {"detected_after", d.detected_after},
                            {"ratio", number_or_null(d.ratio())}};
    }
    if (options.report->has_parent_path()) fs::create_directories(options.report->parent_path());
    util::write_file_atomic(*options.report, q.dump(2) + "\n");
  }
  if (seeded)
    spdlog::warn("seeded run: '{}' is marked \"private\": false; the seed regenerates the noise, "
                 "so the folder is for experiments only, never a release",
                 options.out.string());
  util::write_file_atomic(options.out / kReleaseManifest, m.dump(2) + "\n");
  fs::remove(options.out / kPartialMarker);
  return report;
}

}  // namespace ppreid::deid
