// The generator's output read back through the public dataset reader: what training sees.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "core/data/dataset.h"
#include "core/data/summary.h"
#include "core/data/synth/generator.h"
#include "tests/support/temp_dir.h"

namespace ppreid::data {
namespace {

TEST(SynthReadback, CountsMunicipalitiesKeypointsAttributes) {
  synth::SynthOptions o;
  o.ids = 16;
  o.cameras = 4;
  o.images_per_id = 6;
  o.height = 64;
  o.width = 32;
  o.municipalities = 2;
  o.distractors = 5;
  o.junk = 3;
  o.threads = 2;
  o.seed = 11;
  testing::TempDir dir;
  synth::SynthSummary s = synth::generate(o, dir / "ds");
  Dataset ds = load_dataset(dir / "ds");

  // Counts agree with the generator's own summary; junk is dropped, distractors kept.
  EXPECT_EQ(static_cast<int>(ds.train.size()), s.train_images);
  EXPECT_EQ(static_cast<int>(ds.query.size()), s.query_images);
  EXPECT_EQ(static_cast<int>(ds.gallery.size()) - o.distractors, s.gallery_images);
  EXPECT_EQ(ds.num_train_ids, 8);
  EXPECT_EQ(static_cast<int>(ds.train.size() + ds.query.size() + ds.gallery.size()) -
                o.distractors,
            o.ids * o.images_per_id);

  // Every image (distractors included) has a keypoints row; every identity its attributes.
  DatasetSummary sum = summarize(ds);
  EXPECT_EQ(sum.train.with_keypoints, sum.train.images);
  EXPECT_EQ(sum.query.with_keypoints, sum.query.images);
  EXPECT_EQ(sum.gallery.with_keypoints, sum.gallery.images);
  EXPECT_EQ(sum.attribute_ids, o.ids);
  EXPECT_EQ(sum.total_ids, o.ids);
  EXPECT_EQ(sum.train.ids + sum.gallery.ids, o.ids);

  // Municipalities: 2 cameras each, and no identity is seen by two municipalities.
  ASSERT_EQ(ds.camera_municipality.size(), 4u);
  std::map<int, std::set<int>> munis_of_pid;
  for (const auto* split : {&ds.train, &ds.query, &ds.gallery})
    for (const auto& r : *split)
      if (r.pid > 0) munis_of_pid[r.pid].insert(ds.camera_municipality.at(r.camid));
  EXPECT_EQ(static_cast<int>(munis_of_pid.size()), o.ids);
  for (const auto& [pid, munis] : munis_of_pid) EXPECT_EQ(munis.size(), 1u) << "pid " << pid;

  // Every query has a same-identity gallery image from another camera (Market protocol).
  for (const auto& q : ds.query) {
    bool matched = false;
    for (const auto& g : ds.gallery) matched |= g.pid == q.pid && g.camid != q.camid;
    EXPECT_TRUE(matched) << q.path;
  }
  EXPECT_NO_THROW(verify_images(ds, 2));
}

}  // namespace
}  // namespace ppreid::data
