#include "core/reid/feature_eval.h"

#include <string>

#include "core/reid/centroids.h"
#include "core/reid/evaluation.h"
#include "core/reid/feature_files.h"
#include "core/util/error.h"

namespace ppreid::reid {
namespace fs = std::filesystem;

nlohmann::json evaluate_feature_dir(const fs::path& dir, Metric metric, bool centroids,
                                    CentroidProtocol protocol) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw Error("feature directory '" + dir.string() +
                "' does not exist; it must hold query.csv and gallery.csv");
  for (const char* name : {"query.csv", "gallery.csv"})
    if (!fs::is_regular_file(dir / name, ec))
      throw Error("feature directory '" + dir.string() + "' has no " + name +
                  "; it must hold query.csv and gallery.csv with 'pid,camid,f_1,...,f_d' rows");
  const FeatureSet query = read_feature_csv(dir / "query.csv");
  const FeatureSet gallery = read_feature_csv(dir / "gallery.csv");
  if (query.features.size(1) != gallery.features.size(1))
    throw Error(
        "'" + (dir / "query.csv").string() + "' has " + std::to_string(query.features.size(1)) +
        "-d features but '" + (dir / "gallery.csv").string() + "' has " +
        std::to_string(gallery.features.size(1)) + "-d; extract both splits with the same model");

  nlohmann::json out;
  out["instance"] = evaluate_features(query.features, query.pids, query.camids, gallery.features,
                                      gallery.pids, gallery.camids, metric)
                        .to_json();
  if (centroids) {
    CentroidOptions options;
    options.protocol = protocol;
    out["centroid"] = centroid_metrics_json(
        evaluate_centroids(query.features, query.pids, query.camids, gallery.features, gallery.pids,
                           gallery.camids, metric, options),
        protocol);
  }
  return out;
}

}  // namespace ppreid::reid
