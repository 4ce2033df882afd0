#include "core/data/synth/plan.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "core/data/image_name.h"
#include "core/util/rng.h"

namespace ppreid::data::synth {
namespace {

// Child streams of the run seed; fixed constants so adding a stream never shifts another.
constexpr std::uint64_t kTraitStream = 0x7472616974ULL;
constexpr std::uint64_t kLayoutStream = 0x6c61796f7574ULL;
constexpr std::uint64_t kImageStream = 0x696d616765ULL;
constexpr std::uint64_t kTrackletStream = 0x747261636bULL;

// Market-1501 names must be unique; frames are 6 digits, sequences 1..6, boxes 2 digits.
class NameBook {
 public:
  std::string take(int pid, int camera, int sequence, int frame, int box) {
    for (;;) {
      std::string name = market_image_name(pid, camera, sequence, frame, box);
      if (used_.insert(name).second) return name;
      frame = frame >= 999999 ? 1 : frame + 1;
    }
  }

 private:
  std::set<std::string> used_;
};

std::uint64_t image_seed(std::uint64_t seed, int pid, int camera, int index) {
  const std::uint64_t per_pid =
      util::Rng::derive(util::Rng::derive(seed, kImageStream), static_cast<std::uint64_t>(pid + 1));
  return util::Rng::derive(
      per_pid, (static_cast<std::uint64_t>(camera) << 32) | static_cast<std::uint64_t>(index));
}

// Splits `total` into `parts` near-equal integers, larger ones first.
std::vector<int> even_split(int total, int parts) {
  std::vector<int> out(static_cast<std::size_t>(parts), total / parts);
  for (int i = 0; i < total % parts; ++i) out[static_cast<std::size_t>(i)] += 1;
  return out;
}

std::vector<int> pick_cameras(const std::vector<int>& group, int count, util::Rng& rng) {
  std::vector<int> pool = group;
  std::shuffle(pool.begin(), pool.end(), rng);
  pool.resize(static_cast<std::size_t>(count));
  std::sort(pool.begin(), pool.end());
  return pool;
}

}  // namespace

DatasetPlan plan_dataset(const SynthOptions& o) {
  DatasetPlan plan;
  util::Rng trait_rng(util::Rng::derive(o.seed, kTraitStream));
  util::Rng layout(util::Rng::derive(o.seed, kLayoutStream));

  // Municipalities own contiguous camera ranges.
  std::vector<std::vector<int>> groups(static_cast<std::size_t>(o.municipalities));
  {
    const std::vector<int> sizes = even_split(o.cameras, o.municipalities);
    int camera = 0;
    for (int m = 0; m < o.municipalities; ++m) {
      for (int k = 0; k < sizes[static_cast<std::size_t>(m)]; ++k) {
        groups[static_cast<std::size_t>(m)].push_back(camera++);
        plan.camera_municipality.push_back(m);
      }
    }
  }

  const std::vector<int> ids_per_municipality = even_split(o.ids, o.municipalities);
  int next_pid = 1;
  for (int m = 0; m < o.municipalities; ++m) {
    const int n = ids_per_municipality[static_cast<std::size_t>(m)];
    const std::size_t first = plan.identities.size();

    // Exactly round(fraction * n) look-alikes (never the first identity: it needs a source).
    const int lookalikes = std::min(n - 1, static_cast<int>(std::lround(o.lookalike_fraction * n)));
    std::vector<int> order(static_cast<std::size_t>(n - 1));
    std::iota(order.begin(), order.end(), 1);
    std::shuffle(order.begin(), order.end(), trait_rng);
    std::vector<bool> is_lookalike(static_cast<std::size_t>(n), false);
    for (int i = 0; i < lookalikes; ++i)
      is_lookalike[static_cast<std::size_t>(order[static_cast<std::size_t>(i)])] = true;

    for (int i = 0; i < n; ++i) {
      PlannedIdentity id;
      id.pid = next_pid++;
      id.municipality = m;
      if (is_lookalike[static_cast<std::size_t>(i)]) {
        const std::size_t source =
            first + static_cast<std::size_t>(trait_rng.uniform_int(0, i - 1));
        id.traits = derive_lookalike(plan.identities[source].traits, trait_rng);
        id.lookalike_of = plan.identities[source].pid;
      } else {
        id.traits = sample_traits(trait_rng);
      }
      plan.identities.push_back(std::move(id));
    }

    // Half for training, half (the odd one included) for testing, drawn at random so look-alike
    // pairs end up on both sides as well as within the test set.
    std::vector<std::size_t> members(static_cast<std::size_t>(n));
    std::iota(members.begin(), members.end(), first);
    std::shuffle(members.begin(), members.end(), layout);
    for (int i = 0; i < n / 2; ++i)
      plan.identities[members[static_cast<std::size_t>(i)]].train = true;
  }

  NameBook names;
  const std::string train_dir = split_dir(SplitKind::kTrain);
  const std::string query_dir = split_dir(SplitKind::kQuery);
  const std::string gallery_dir = split_dir(SplitKind::kGallery);

  for (std::size_t idx = 0; idx < plan.identities.size(); ++idx) {
    PlannedIdentity& id = plan.identities[idx];
    const std::vector<int>& group = groups[static_cast<std::size_t>(id.municipality)];
    const int n = o.images_per_id;
    // A test identity needs one query per camera plus gallery images in two cameras or more,
    // so it can use at most n - 2 cameras.
    const int max_cameras = std::min({static_cast<int>(group.size()), 6, id.train ? n : n - 2});
    const int k = static_cast<int>(layout.uniform_int(2, std::max(2, max_cameras)));
    id.cameras = pick_cameras(group, k, layout);

    // Per camera: queries (test only) and the remaining images.
    std::vector<int> queries(static_cast<std::size_t>(k), id.train ? 0 : 1);
    std::vector<int> others(static_cast<std::size_t>(k), 0);
    int left = n - (id.train ? 0 : k);
    // Every camera gets at least one other image when there are enough; otherwise the first
    // two do, which is what gives each query a match in another camera.
    const int guaranteed = left >= k ? k : 2;
    for (int c = 0; c < guaranteed; ++c) others[static_cast<std::size_t>(c)] = 1;
    left -= guaranteed;
    for (; left > 0; --left) others[static_cast<std::size_t>(layout.uniform_int(0, k - 1))] += 1;

    for (int c = 0; c < k; ++c) {
      const int camera = id.cameras[static_cast<std::size_t>(c)];
      const std::uint64_t tracklet = util::Rng::derive(
          util::Rng::derive(o.seed, kTrackletStream),
          (static_cast<std::uint64_t>(id.pid) << 16) | static_cast<std::uint64_t>(camera));
      const int sequence = static_cast<int>(layout.uniform_int(1, 6));
      int frame = static_cast<int>(layout.uniform_int(50, 400000));
      const int total = queries[static_cast<std::size_t>(c)] + others[static_cast<std::size_t>(c)];
      for (int i = 0; i < total; ++i) {
        PlannedImage img;
        img.kind = ImageKind::kIdentity;
        img.pid = id.pid;
        img.camera = camera;
        img.identity = static_cast<int>(idx);
        img.split = id.train ? SplitKind::kTrain
                             : (i < queries[static_cast<std::size_t>(c)] ? SplitKind::kQuery
                                                                         : SplitKind::kGallery);
        frame += static_cast<int>(layout.uniform_int(4, 60));
        const int box = layout.bernoulli(0.85) ? 1 : static_cast<int>(layout.uniform_int(2, 4));
        const std::string& dir = img.split == SplitKind::kTrain   ? train_dir
                                 : img.split == SplitKind::kQuery ? query_dir
                                                                  : gallery_dir;
        img.path = dir + "/" + names.take(id.pid, camera, sequence, frame, box);
        img.seed = image_seed(o.seed, id.pid, camera, i);
        img.tracklet_seed = tracklet;
        plan.images.push_back(std::move(img));
      }
    }
  }

  std::vector<int> test_identities;
  for (std::size_t i = 0; i < plan.identities.size(); ++i)
    if (!plan.identities[i].train) test_identities.push_back(static_cast<int>(i));

  for (int i = 0; i < o.distractors; ++i) {
    PlannedImage img;
    img.kind = ImageKind::kDistractor;
    img.split = SplitKind::kGallery;
    img.pid = 0;
    img.camera = static_cast<int>(layout.uniform_int(0, o.cameras - 1));
    img.path = gallery_dir + "/" +
               names.take(0, img.camera, static_cast<int>(layout.uniform_int(1, 6)),
                          static_cast<int>(layout.uniform_int(1, 999999)),
                          static_cast<int>(layout.uniform_int(1, 9)));
    img.seed = image_seed(o.seed, 0, img.camera, i);
    img.tracklet_seed = img.seed;
    plan.images.push_back(std::move(img));
  }

  // Junk: failed detections of real test people, seen in one of their own cameras.
  for (int i = 0; i < o.junk; ++i) {
    PlannedImage img;
    img.kind = ImageKind::kJunk;
    img.split = SplitKind::kGallery;
    img.pid = -1;
    img.identity = test_identities[static_cast<std::size_t>(
        layout.uniform_int(0, static_cast<std::int64_t>(test_identities.size()) - 1))];
    const auto& cams = plan.identities[static_cast<std::size_t>(img.identity)].cameras;
    img.camera = cams[static_cast<std::size_t>(
        layout.uniform_int(0, static_cast<std::int64_t>(cams.size()) - 1))];
    img.path = gallery_dir + "/" +
               names.take(-1, img.camera, static_cast<int>(layout.uniform_int(1, 6)),
                          static_cast<int>(layout.uniform_int(1, 999999)),
                          static_cast<int>(layout.uniform_int(1, 9)));
    img.seed = image_seed(o.seed, -1, img.camera, i);
    img.tracklet_seed = img.seed;
    plan.images.push_back(std::move(img));
  }
  return plan;
}

}  // namespace ppreid::data::synth
