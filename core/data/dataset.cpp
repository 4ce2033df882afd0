#include "core/data/dataset.h"

#include <algorithm>
#include <set>

#include "core/util/csv.h"
#include "core/util/error.h"

namespace ppreid::data {
namespace fs = std::filesystem;
namespace {

bool is_image_file(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

std::vector<std::string> list_images(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    // Real Market-1501 copies carry Thumbs.db and similar; only image files matter.
    if (it->is_regular_file() && is_image_file(it->path()))
      names.push_back(it->path().filename().string());
  }
  if (ec) throw Error("cannot list '" + dir.string() + "': " + ec.message());
  std::sort(names.begin(), names.end());  // directory order is filesystem-dependent
  return names;
}

const char* example_name(Layout layout) {
  return layout == Layout::kMarket1501 ? "0002_c1s1_000451_03.jpg" : "0005_c2_f0046985.jpg";
}

Layout detect_layout(const fs::path& train_dir, const std::vector<std::string>& names) {
  for (const auto& name : names) {
    if (parse_image_name(Layout::kMarket1501, name)) return Layout::kMarket1501;
    if (parse_image_name(Layout::kDukeMTMC, name)) return Layout::kDukeMTMC;
    throw Error("cannot tell the dataset layout from '" + (train_dir / name).string() +
                "': names must look like Market-1501's 0002_c1s1_000451_03.jpg or "
                "DukeMTMC-reID's 0005_c2_f0046985.jpg");
  }
  throw Error("'" + train_dir.string() + "' contains no .jpg/.png images");
}

std::vector<ImageRecord> read_split(const fs::path& root, SplitKind kind, Layout layout,
                                    const std::vector<std::string>& names) {
  const std::string dir = split_dir(kind);
  std::vector<ImageRecord> records;
  records.reserve(names.size());
  for (const auto& name : names) {
    auto parsed = parse_image_name(layout, name);
    if (!parsed)
      throw Error("image name '" + (root / dir / name).string() + "' does not follow the " +
                  layout_name(layout) + " layout (expected names like " + example_name(layout) +
                  "); rename or remove the file");
    if (parsed->pid == -1) continue;  // junk boxes, as in the official protocol
    // Distractors (pid 0) only make sense as gallery negatives.
    if (parsed->pid == 0 && kind != SplitKind::kGallery) continue;
    records.push_back({dir + "/" + name, parsed->pid, parsed->camid, -1});
  }
  if (records.empty())
    throw Error("split '" + (root / dir).string() + "' has no usable images (only junk or " +
                "distractors); a ReID dataset needs identities in every split");
  return records;
}

std::map<int, int> read_municipalities(const fs::path& path) {
  util::CsvFile file = util::read_csv(path);
  file.expect_header({"camera", "municipality"});
  std::map<int, int> map;
  for (const auto& row : file.rows) {
    int camera = 0, municipality = 0;
    try {
      camera = std::stoi(row.fields[0]);
      municipality = std::stoi(row.fields[1]);
    } catch (const std::exception&) {
      file.fail(row.line, "camera and municipality must be integers");
    }
    if (camera < 1 || municipality < 1)
      file.fail(row.line, "camera and municipality are 1-based (got " + row.fields[0] + "," +
                              row.fields[1] + ")");
    if (!map.emplace(camera - 1, municipality - 1).second)
      file.fail(row.line, "camera " + row.fields[0] + " appears twice");
  }
  return map;
}

}  // namespace

const char* split_dir(SplitKind kind) {
  switch (kind) {
    case SplitKind::kTrain: return "bounding_box_train";
    case SplitKind::kQuery: return "query";
    case SplitKind::kGallery: return "bounding_box_test";
  }
  return "";
}

const std::vector<ImageRecord>& Dataset::split(SplitKind kind) const {
  switch (kind) {
    case SplitKind::kTrain: return train;
    case SplitKind::kQuery: return query;
    case SplitKind::kGallery: return gallery;
  }
  return train;
}

const Pose* Dataset::pose(const ImageRecord& r) const {
  auto it = keypoints.find(r.path);
  return it == keypoints.end() ? nullptr : &it->second;
}

LoadOptions present_splits(const fs::path& root) {
  auto has_images = [&](SplitKind kind) {
    const fs::path dir = root / split_dir(kind);
    return fs::is_directory(dir) && !fs::is_empty(dir);
  };
  LoadOptions options;
  options.require_train = has_images(SplitKind::kTrain);
  options.require_query_gallery = has_images(SplitKind::kQuery) && has_images(SplitKind::kGallery);
  // Neither: keep the defaults so load_dataset names what is missing.
  if (!options.require_train && !options.require_query_gallery) return LoadOptions{};
  return options;
}

Dataset load_dataset(const fs::path& root, const LoadOptions& options) {
  if (!fs::exists(root))
    throw Error("dataset directory '" + root.string() + "' does not exist; create one with " +
                "`ppreid synth --out " + root.string() + "`");
  if (!fs::is_directory(root))
    throw Error("dataset path '" + root.string() + "' is not a directory");

  Dataset ds;
  ds.root = root;
  if (!options.require_train && !options.require_query_gallery)
    throw Error("loading '" + root.string() + "': a dataset needs a train split, or query and "
                "gallery splits");
  std::vector<SplitKind> kinds;
  if (options.require_train) kinds.push_back(SplitKind::kTrain);
  if (options.require_query_gallery) {
    kinds.push_back(SplitKind::kQuery);
    kinds.push_back(SplitKind::kGallery);
  }
  std::map<SplitKind, std::vector<std::string>> names;
  for (SplitKind kind : kinds) {
    fs::path dir = root / split_dir(kind);
    if (!fs::is_directory(dir))
      throw Error("'" + dir.string() + "' is missing: a Market-1501/DukeMTMC-reID layout needs " +
                  "bounding_box_train/, query/ and bounding_box_test/ under " + root.string());
    names[kind] = list_images(dir);
    if (names[kind].empty())
      throw Error("split '" + dir.string() + "' is empty (no .jpg/.png images)");
  }
  const SplitKind first = kinds.front();
  ds.layout = options.layout ? *options.layout
                             : detect_layout(root / split_dir(first), names[first]);
  if (options.require_train)
    ds.train = read_split(root, SplitKind::kTrain, ds.layout, names[SplitKind::kTrain]);
  if (options.require_query_gallery) {
    ds.query = read_split(root, SplitKind::kQuery, ds.layout, names[SplitKind::kQuery]);
    ds.gallery = read_split(root, SplitKind::kGallery, ds.layout, names[SplitKind::kGallery]);
  }

  std::set<int> train_pids;
  for (const auto& r : ds.train) train_pids.insert(r.pid);
  std::map<int, int> label_of;
  for (int pid : train_pids) label_of.emplace(pid, static_cast<int>(label_of.size()));
  for (auto& r : ds.train) r.label = label_of.at(r.pid);
  ds.num_train_ids = static_cast<int>(label_of.size());

  if (fs::exists(root / "keypoints.csv")) ds.keypoints = read_keypoints_csv(root / "keypoints.csv");
  if (fs::exists(root / "attributes.csv"))
    ds.attributes = read_attributes_csv(root / "attributes.csv");
  if (fs::exists(root / "municipalities.csv"))
    ds.camera_municipality = read_municipalities(root / "municipalities.csv");
  return ds;
}

}  // namespace ppreid::data
