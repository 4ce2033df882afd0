#include "core/data/summary.h"

#include <opencv2/imgcodecs.hpp>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <set>
#include <thread>

#include "core/util/error.h"

namespace ppreid::data {
namespace {

SplitSummary summarize_split(const Dataset& ds, const std::vector<ImageRecord>& records,
                             std::set<int>& all_ids) {
  SplitSummary s;
  std::set<int> ids, cams;
  for (const auto& r : records) {
    ++s.images;
    cams.insert(r.camid);
    if (r.pid == 0) {
      ++s.distractors;
    } else {
      ids.insert(r.pid);
      all_ids.insert(r.pid);
    }
    if (const Pose* p = ds.pose(r)) {
      ++s.with_keypoints;
      s.with_torso += p->has_torso() ? 1 : 0;
    }
  }
  s.ids = static_cast<int>(ids.size());
  s.cameras = static_cast<int>(cams.size());
  return s;
}

nlohmann::json split_json(const SplitSummary& s) {
  auto ratio = [&](int n) { return s.images ? static_cast<double>(n) / s.images : 0.0; };
  return {{"images", s.images},
          {"ids", s.ids},
          {"cameras", s.cameras},
          {"distractors", s.distractors},
          {"keypoint_coverage", ratio(s.with_keypoints)},
          {"torso_coverage", ratio(s.with_torso)}};
}

}  // namespace

DatasetSummary summarize(const Dataset& ds) {
  DatasetSummary sum;
  sum.root = ds.root.string();
  sum.layout = layout_name(ds.layout);
  std::set<int> all_ids;
  sum.train = summarize_split(ds, ds.train, all_ids);
  sum.query = summarize_split(ds, ds.query, all_ids);
  sum.gallery = summarize_split(ds, ds.gallery, all_ids);
  sum.total_ids = static_cast<int>(all_ids.size());
  for (int pid : all_ids) sum.attribute_ids += ds.attributes.count(pid) ? 1 : 0;
  std::set<int> munis;
  for (const auto& [cam, m] : ds.camera_municipality) munis.insert(m);
  sum.municipalities = static_cast<int>(munis.size());
  return sum;
}

nlohmann::json DatasetSummary::to_json() const {
  return {{"root", root},
          {"layout", layout},
          {"splits", {{"train", split_json(train)},
                      {"query", split_json(query)},
                      {"gallery", split_json(gallery)}}},
          {"identities", total_ids},
          {"attribute_coverage",
           total_ids ? static_cast<double>(attribute_ids) / total_ids : 0.0},
          {"municipalities", municipalities}};
}

std::string DatasetSummary::to_text() const {
  std::string out = "dataset " + root + " (" + layout + ")\n";
  char line[160];
  std::snprintf(line, sizeof line, "  %-8s %8s %6s %8s %12s %10s\n", "split", "images", "ids",
                "cameras", "distractors", "keypoints");
  out += line;
  auto row = [&](const char* name, const SplitSummary& s) {
    std::snprintf(line, sizeof line, "  %-8s %8d %6d %8d %12d %9.1f%%\n", name, s.images, s.ids,
                  s.cameras, s.distractors,
                  s.images ? 100.0 * s.with_keypoints / s.images : 0.0);
    out += line;
  };
  row("train", train);
  row("query", query);
  row("gallery", gallery);
  std::snprintf(line, sizeof line, "  identities %d, with attributes %d (%.1f%%), municipalities %d\n",
                total_ids, attribute_ids, total_ids ? 100.0 * attribute_ids / total_ids : 0.0,
                municipalities);
  out += line;
  return out;
}

void verify_images(const Dataset& ds, int threads) {
  std::vector<const ImageRecord*> all;
  for (const auto* split : {&ds.train, &ds.query, &ds.gallery})
    for (const auto& r : *split) all.push_back(&r);
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::optional<std::string> first_bad;
  auto work = [&] {
    for (size_t i = next++; i < all.size(); i = next++) {
      cv::Mat img = cv::imread(ds.absolute(*all[i]).string(), cv::IMREAD_COLOR);
      if (img.empty()) {
        std::lock_guard lock(mu);
        if (!first_bad || *first_bad > all[i]->path) first_bad = all[i]->path;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < std::max(1, threads); ++t) pool.emplace_back(work);
  for (auto& t : pool) t.join();
  if (first_bad)
    throw Error("image '" + (ds.root / *first_bad).string() +
                "' cannot be decoded (corrupt or not an image); replace or remove it");
}

}  // namespace ppreid::data
