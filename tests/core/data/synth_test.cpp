// The procedural pedestrian generator: option checks, rendering invariants (keypoints on the
// drawn body, views), the Market layout rules and byte-for-byte determinism.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <opencv2/imgcodecs.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/data/image_name.h"
#include "core/data/keypoints.h"
#include "core/data/synth/generator.h"
#include "core/data/synth/plan.h"
#include "core/data/synth/renderer.h"
#include "core/data/synth/scene.h"
#include "core/data/synth/skeleton.h"
#include "core/data/synth/traits.h"
#include "core/util/error.h"
#include "tests/support/temp_dir.h"

namespace ppreid::data::synth {
namespace {

namespace fs = std::filesystem;

SynthOptions tiny_options() {
  SynthOptions o;
  o.ids = 12;
  o.cameras = 4;
  o.images_per_id = 6;
  o.height = 64;
  o.width = 32;
  o.municipalities = 2;
  o.distractors = 4;
  o.junk = 2;
  o.threads = 2;
  o.seed = 5;
  return o;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Relative path -> file bytes for every regular file under `root`.
std::map<std::string, std::string> snapshot(const fs::path& root) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file()) files[fs::relative(e.path(), root).string()] = slurp(e.path());
  return files;
}

std::vector<std::string> list_dir(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  return names;
}

// ---- validate ----

struct BadOption {
  const char* flag;
  std::function<void(SynthOptions&)> spoil;
};

TEST(SynthValidate, AcceptsDefaultsAndTinyOptions) {
  EXPECT_NO_THROW(validate(SynthOptions{}));
  EXPECT_NO_THROW(validate(tiny_options()));
}

TEST(SynthValidate, RejectsEachBadOptionNamingIt) {
  const std::vector<BadOption> cases = {
      {"--ids", [](SynthOptions& o) { o.ids = 0; }},
      {"--ids", [](SynthOptions& o) { o.ids = 3; }},
      {"--ids", [](SynthOptions& o) { o.ids = 10000; }},
      {"--ids", [](SynthOptions& o) { o.ids = 5, o.municipalities = 3, o.cameras = 6; }},
      {"--cameras", [](SynthOptions& o) { o.cameras = 1, o.municipalities = 1; }},
      {"--cameras", [](SynthOptions& o) { o.cameras = 5, o.municipalities = 3; }},
      {"--cameras", [](SynthOptions& o) { o.cameras = 1000; }},
      {"--municipalities", [](SynthOptions& o) { o.municipalities = 0; }},
      {"--images-per-id", [](SynthOptions& o) { o.images_per_id = 3; }},
      {"--height", [](SynthOptions& o) { o.height = 31; }},
      {"--width", [](SynthOptions& o) { o.width = 15; }},
      {"--distractors", [](SynthOptions& o) { o.distractors = -1; }},
      {"--junk", [](SynthOptions& o) { o.junk = -2; }},
      {"--lookalike-fraction", [](SynthOptions& o) { o.lookalike_fraction = 1.5; }},
      {"--lookalike-fraction", [](SynthOptions& o) { o.lookalike_fraction = -0.1; }},
      {"--jpeg-quality", [](SynthOptions& o) { o.jpeg_quality = 0; }},
      {"--jpeg-quality", [](SynthOptions& o) { o.jpeg_quality = 101; }},
      {"--threads", [](SynthOptions& o) { o.threads = -1; }},
  };
  for (const BadOption& c : cases) {
    SynthOptions o = tiny_options();
    c.spoil(o);
    try {
      validate(o);
      ADD_FAILURE() << "accepted a bad " << c.flag;
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(c.flag), std::string::npos)
          << "message does not name " << c.flag << ": " << e.what();
    }
  }
  // The documented example message.
  SynthOptions o = tiny_options();
  o.ids = 0;
  try {
    validate(o);
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--ids must be >= 4 (got 0)"), std::string::npos);
  }
}

TEST(SynthValidate, GenerateValidatesBeforeTouchingDisk) {
  testing::TempDir dir;
  SynthOptions o = tiny_options();
  o.height = 8;
  EXPECT_THROW(generate(o, dir / "ds"), UsageError);
  EXPECT_TRUE(list_dir(dir.path()).empty());
}

// ---- rendering ----

struct RenderCase {
  IdentityTraits traits;
  CameraStyle style;
  ImageParams params;
};

// Deterministic spread of identities, cameras, views and framings.
std::vector<RenderCase> render_cases(int count, int height, int width) {
  std::vector<RenderCase> cases;
  util::Rng rng(77);
  std::vector<CameraStyle> styles;
  for (int c = 0; c < 4; ++c) styles.push_back(sample_camera_style(rng, height, width));
  for (int i = 0; i < count; ++i) {
    RenderCase rc;
    rc.traits = sample_traits(rng);
    rc.style = styles[static_cast<std::size_t>(i % 4)];
    rc.params = sample_image_params(rc.style, rng, height, width);
    rc.params.view = static_cast<View>(i % kNumViews);
    cases.push_back(std::move(rc));
  }
  return cases;
}

TEST(SynthRender, VisibleKeypointsLieOnDrawnPersonPixels) {
  for (auto [height, width] : {std::pair{128, 64}, std::pair{64, 32}}) {
    int visible = 0, checked_images = 0;
    util::Rng rng(3);
    for (const RenderCase& rc : render_cases(200, height, width)) {
      RenderedImage r = render_image(rc.traits, rc.style, rc.params, height, width, rng);
      ASSERT_EQ(r.image.rows, height);
      ASSERT_EQ(r.image.cols, width);
      ASSERT_EQ(r.image.type(), CV_8UC3);
      ++checked_images;
      for (int j = 0; j < kNumJoints; ++j) {
        const Keypoint& k = r.pose.joints[static_cast<std::size_t>(j)];
        if (!k.visible()) {
          EXPECT_EQ(k.x, -1.f);
          EXPECT_EQ(k.y, -1.f);
          continue;
        }
        ++visible;
        ASSERT_LT(k.x, 1.f);
        ASSERT_LT(k.y, 1.f);
        // Pixel centres sit at (i + 0.5) / size, as core/data/stickman.h maps them.
        const int x = static_cast<int>(std::lround(k.x * width - 0.5f));
        const int y = static_cast<int>(std::lround(k.y * height - 0.5f));
        ASSERT_GE(x, 0);
        ASSERT_GE(y, 0);
        EXPECT_GT(r.person_mask.at<uchar>(y, x), 0)
            << joint_name(j) << " at (" << x << "," << y << ") is not on the person; view "
            << view_name(rc.params.view) << ", image " << checked_images << ", " << height << "x"
            << width;
      }
    }
    // Most joints of most people are visible: the check above is not vacuous.
    EXPECT_GT(visible, checked_images * 10);
  }
}

TEST(SynthRender, PersonIsDrawnAndDiffersFromBackground) {
  util::Rng rng(9);
  CameraStyle style = sample_camera_style(rng, 128, 64);
  ImageParams params = sample_image_params(style, rng, 128, 64);
  params.occluder = Occluder::kNone;
  IdentityTraits traits = sample_traits(rng);
  RenderedImage r = render_image(traits, style, params, 128, 64, rng);
  const double coverage = cv::countNonZero(r.person_mask) / double(128 * 64);
  EXPECT_GT(coverage, 0.12);
  EXPECT_LT(coverage, 0.7);

  params.person = false;
  RenderedImage empty = render_image(traits, style, params, 128, 64, rng);
  EXPECT_EQ(cv::countNonZero(empty.person_mask), 0);
  EXPECT_EQ(empty.pose.visible_count(), 0);
}

ImageParams clean_params(const CameraStyle& style, View view) {
  util::Rng rng(1);
  ImageParams p = sample_image_params(style, rng, 128, 64);
  p.view = view;
  p.occluder = Occluder::kNone;
  p.person_height = 0.85;
  p.center_x = 0.5;
  p.feet_y = 0.96;
  return p;
}

TEST(SynthRender, ViewsPlaceAndHideJointsLikeAPoseDetector) {
  util::Rng rng(21);
  const CameraStyle style = sample_camera_style(rng, 128, 64);
  for (int i = 0; i < 20; ++i) {
    const IdentityTraits traits = sample_traits(rng);
    // Front: the person's right shoulder is on the image left; back: mirrored, face hidden.
    RenderedImage front =
        render_image(traits, style, clean_params(style, View::kFront), 128, 64, rng);
    EXPECT_EQ(front.pose.visible_count(), kNumJoints);
    EXPECT_LT(front.pose[Joint::kRShoulder].x, front.pose[Joint::kLShoulder].x);
    EXPECT_LT(front.pose[Joint::kRHip].x, front.pose[Joint::kLHip].x);
    EXPECT_TRUE(front.pose.has_torso());

    RenderedImage back =
        render_image(traits, style, clean_params(style, View::kBack), 128, 64, rng);
    EXPECT_GT(back.pose[Joint::kRShoulder].x, back.pose[Joint::kLShoulder].x);
    EXPECT_FALSE(back.pose[Joint::kNose].visible());
    EXPECT_FALSE(back.pose[Joint::kREye].visible());
    EXPECT_FALSE(back.pose[Joint::kLEye].visible());
    EXPECT_TRUE(back.pose[Joint::kREar].visible());

    // Side views: every far-side joint (limbs, eye, ear) is hidden, the near side is shown,
    // and the shoulders nearly coincide.
    for (View view : {View::kSideLeft, View::kSideRight}) {
      RenderedImage side = render_image(traits, style, clean_params(style, view), 128, 64, rng);
      for (int j = 0; j < kNumJoints; ++j) {
        const bool far = view == View::kSideLeft ? is_right_joint(j) : is_left_joint(j);
        const bool near = view == View::kSideLeft ? is_left_joint(j) : is_right_joint(j);
        const bool shown = side.pose.joints[static_cast<std::size_t>(j)].visible();
        if (far) {
          EXPECT_FALSE(shown) << view_name(view) << " shows far-side " << joint_name(j);
        }
        if (near) {
          EXPECT_TRUE(shown) << view_name(view) << " hides near-side " << joint_name(j);
        }
      }
      EXPECT_TRUE(side.pose[Joint::kNose].visible());
      const Joint near_shoulder = view == View::kSideLeft ? Joint::kLShoulder : Joint::kRShoulder;
      EXPECT_NEAR(side.pose[near_shoulder].x, side.pose[Joint::kNeck].x, 0.06);
      // The nose points where the person walks.
      if (view == View::kSideLeft) {
        EXPECT_LT(side.pose[Joint::kNose].x, side.pose[Joint::kNeck].x);
      } else {
        EXPECT_GT(side.pose[Joint::kNose].x, side.pose[Joint::kNeck].x);
      }
    }
  }
}

TEST(SynthRender, JointsOutsideTheCropOrUnderTheOccluderAreHidden) {
  util::Rng rng(5);
  const CameraStyle style = sample_camera_style(rng, 128, 64);
  const IdentityTraits traits = sample_traits(rng);
  // Framed far too close with the feet well below the crop: legs are cut off.
  ImageParams close = clean_params(style, View::kFront);
  close.person_height = 2.0;
  close.feet_y = 1.9;
  RenderedImage cut = render_image(traits, style, close, 128, 64, rng);
  EXPECT_FALSE(cut.pose[Joint::kRAnkle].visible());
  EXPECT_FALSE(cut.pose[Joint::kLKnee].visible());
  EXPECT_TRUE(cut.pose[Joint::kNeck].visible());

  // A wide pole straight through the body centre hides the neck and nose.
  ImageParams pole = clean_params(style, View::kFront);
  pole.occluder = Occluder::kPole;
  pole.occluder_position = 0.5;
  pole.occluder_size = 1.0;
  RenderedImage occluded = render_image(traits, style, pole, 128, 64, rng);
  EXPECT_FALSE(occluded.pose[Joint::kNeck].visible());
  EXPECT_FALSE(occluded.pose[Joint::kNose].visible());
  EXPECT_EQ(occluded.person_mask.at<uchar>(40, 32), 0);
}

TEST(SynthRender, StyleForAnotherSizeIsRejected) {
  util::Rng rng(2);
  const CameraStyle small = sample_camera_style(rng, 64, 32);
  const ImageParams params = sample_image_params(small, rng, 64, 32);
  EXPECT_THROW(render_image(sample_traits(rng), small, params, 128, 64, rng), Error);
}

// ---- traits ----

TEST(SynthTraits, LookalikesChangeOneOrTwoVisibleTraits) {
  util::Rng rng(4);
  for (int i = 0; i < 200; ++i) {
    const IdentityTraits source = sample_traits(rng);
    std::vector<TraitChange> changes;
    const IdentityTraits copy = derive_lookalike(source, rng, &changes);
    ASSERT_GE(changes.size(), 1u);
    ASSERT_LE(changes.size(), 2u);
    // Untouched traits stay: the skin, gender and age never change.
    EXPECT_EQ(copy.skin, source.skin);
    EXPECT_EQ(copy.gender, source.gender);
    EXPECT_EQ(copy.age_group, source.age_group);
    for (TraitChange c : changes) {
      switch (c) {
        case TraitChange::kHair:
          EXPECT_NE(copy.hair_length, source.hair_length);
          break;
        case TraitChange::kBag:
          EXPECT_NE(copy.bag, source.bag);
          break;
        case TraitChange::kBackpack:
          EXPECT_NE(copy.backpack, source.backpack);
          break;
        case TraitChange::kHat:
          EXPECT_NE(copy.hat, source.hat);
          break;
        case TraitChange::kUpperTexture:
          EXPECT_NE(copy.upper_texture, source.upper_texture);
          break;
        case TraitChange::kUpperShade:
          EXPECT_NE(copy.upper, source.upper);
          break;
        case TraitChange::kLowerColor:
          EXPECT_NE(copy.lower, source.lower);
          break;
        case TraitChange::kSleeves:
          EXPECT_NE(copy.sleeve_length, source.sleeve_length);
          break;
        case TraitChange::kShoes:
          EXPECT_NE(copy.shoes, source.shoes);
          break;
        case TraitChange::kBuild:
          EXPECT_NE(copy.shoulder_width, source.shoulder_width);
          break;
      }
    }
  }
}

TEST(SynthTraits, AttributesUseTheVocabulary) {
  util::Rng rng(8);
  std::set<std::string> uppers;
  for (int i = 0; i < 300; ++i) {
    const Attributes a = to_attributes(sample_traits(rng));
    const auto& words = attribute_colors();
    EXPECT_NE(std::find(words.begin(), words.end(), a.upper_color), words.end()) << a.upper_color;
    EXPECT_NE(std::find(words.begin(), words.end(), a.lower_color), words.end()) << a.lower_color;
    uppers.insert(a.upper_color);
  }
  // No single colour dominates: identities must not be separable by one colour.
  EXPECT_GE(uppers.size(), 6u);
}

// ---- plan and dataset layout ----

TEST(SynthPlan, LookalikesStayInTheirMunicipality) {
  SynthOptions o = tiny_options();
  o.ids = 40;
  o.lookalike_fraction = 0.5;
  const DatasetPlan plan = plan_dataset(o);
  int lookalikes = 0;
  std::map<int, int> municipality_of;
  for (const auto& id : plan.identities) municipality_of[id.pid] = id.municipality;
  for (const auto& id : plan.identities) {
    if (id.lookalike_of == 0) continue;
    ++lookalikes;
    EXPECT_LT(id.lookalike_of, id.pid);
    EXPECT_EQ(municipality_of.at(id.lookalike_of), id.municipality);
  }
  EXPECT_EQ(lookalikes, 20);  // round(0.5 * 20) in each of the two municipalities
}

class SynthDataset : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    summary_ = generate(tiny_options(), *dir_ / "ds");
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static fs::path root() { return *dir_ / "ds"; }

  // (pid, 0-based camera) of every file in a split directory.
  static std::vector<std::pair<int, int>> ids_in(const char* split) {
    std::vector<std::pair<int, int>> out;
    for (const std::string& name : list_dir(root() / split)) {
      auto parsed = parse_image_name(Layout::kMarket1501, name);
      EXPECT_TRUE(parsed.has_value()) << name;
      if (parsed) out.emplace_back(parsed->pid, parsed->camid);
    }
    return out;
  }

  static testing::TempDir* dir_;
  static SynthSummary summary_;
};

testing::TempDir* SynthDataset::dir_ = nullptr;
SynthSummary SynthDataset::summary_;

TEST_F(SynthDataset, FileCountsMatchTheSummaryAndSideFiles) {
  const SynthOptions o = tiny_options();
  EXPECT_EQ(static_cast<int>(list_dir(root() / "bounding_box_train").size()),
            summary_.train_images);
  EXPECT_EQ(static_cast<int>(list_dir(root() / "query").size()), summary_.query_images);
  EXPECT_EQ(static_cast<int>(list_dir(root() / "bounding_box_test").size()),
            summary_.gallery_images + o.distractors + o.junk);
  EXPECT_EQ(summary_.train_images + summary_.query_images + summary_.gallery_images,
            o.ids * o.images_per_id);
  EXPECT_EQ(summary_.train_ids, 6);
  EXPECT_EQ(summary_.test_ids, 6);
  EXPECT_EQ(summary_.cameras, 4);
  EXPECT_EQ(summary_.municipalities, 2);

  const int files = summary_.train_images + summary_.query_images + summary_.gallery_images +
                    o.distractors + o.junk;
  const KeypointTable keypoints = read_keypoints_csv(root() / "keypoints.csv");
  EXPECT_EQ(static_cast<int>(keypoints.size()), files);
  for (const auto& [path, pose] : keypoints) {
    EXPECT_TRUE(fs::exists(root() / path)) << path;
    for (const Keypoint& k : pose.joints) {
      if (!k.visible()) continue;
      EXPECT_GE(k.x, 0.f);
      EXPECT_LT(k.x, 1.f);
      EXPECT_LT(k.y, 1.f);
    }
  }
  const AttributeTable attributes = read_attributes_csv(root() / "attributes.csv");
  EXPECT_EQ(static_cast<int>(attributes.size()), o.ids);
  EXPECT_EQ(attributes.begin()->first, 1);
  EXPECT_EQ(attributes.rbegin()->first, o.ids);

  EXPECT_EQ(slurp(root() / "municipalities.csv"), "camera,municipality\n1,1\n2,1\n3,2\n4,2\n");
  const std::string json = slurp(root() / "synth.json");
  EXPECT_NE(json.find("\"seed\": 5"), std::string::npos);
  EXPECT_EQ(json.find("threads"), std::string::npos);

  // No staging directory is left next to the dataset.
  EXPECT_EQ(list_dir(dir_->path()), std::vector<std::string>{"ds"});
  // Images decode at the requested size (checked on the first query).
  const std::string first_query = list_dir(root() / "query").front();
  const cv::Mat img = cv::imread((root() / "query" / first_query).string());
  EXPECT_EQ(img.rows, 64);
  EXPECT_EQ(img.cols, 32);
}

TEST_F(SynthDataset, TrainAndTestIdentitiesAreDisjointWithFourDigitPids) {
  std::set<int> train, test;
  for (auto [pid, cam] : ids_in("bounding_box_train")) train.insert(pid);
  for (auto [pid, cam] : ids_in("query")) test.insert(pid);
  for (auto [pid, cam] : ids_in("bounding_box_test"))
    if (pid > 0) test.insert(pid);
  for (int pid : train) EXPECT_EQ(test.count(pid), 0u) << pid;
  EXPECT_EQ(train.size() + test.size(), 12u);
  for (const std::string& name : list_dir(root() / "bounding_box_train"))
    EXPECT_EQ(name.find('_'), 4u) << name;
  bool saw_junk = false, saw_distractor = false;
  for (const std::string& name : list_dir(root() / "bounding_box_test")) {
    saw_junk |= name.rfind("-1_c", 0) == 0;
    saw_distractor |= name.rfind("0000_c", 0) == 0;
  }
  EXPECT_TRUE(saw_junk);
  EXPECT_TRUE(saw_distractor);
}

TEST_F(SynthDataset, IdentitiesStayInTheirMunicipalityAndSpanTwoCameras) {
  // municipalities.csv: cameras 1-2 -> municipality 1, cameras 3-4 -> municipality 2.
  auto municipality = [](int camid) { return camid < 2 ? 0 : 1; };
  std::map<int, std::set<int>> cameras_of, municipalities_of;
  for (const char* split : {"bounding_box_train", "query", "bounding_box_test"}) {
    for (auto [pid, cam] : ids_in(split)) {
      if (pid <= 0) continue;
      cameras_of[pid].insert(cam);
      municipalities_of[pid].insert(municipality(cam));
    }
  }
  ASSERT_EQ(cameras_of.size(), 12u);
  for (const auto& [pid, cams] : cameras_of) {
    EXPECT_GE(cams.size(), 2u) << "pid " << pid;
    EXPECT_EQ(municipalities_of[pid].size(), 1u) << "pid " << pid;
  }
}

TEST_F(SynthDataset, EveryTestIdentityHasQueriesWithCrossCameraGalleryMatches) {
  const auto queries = ids_in("query");
  const auto gallery = ids_in("bounding_box_test");
  std::map<int, std::set<int>> query_cams, gallery_cams;
  for (auto [pid, cam] : queries) query_cams[pid].insert(cam);
  for (auto [pid, cam] : gallery)
    if (pid > 0) gallery_cams[pid].insert(cam);
  EXPECT_EQ(query_cams.size(), 6u);
  for (const auto& [pid, cams] : gallery_cams) EXPECT_EQ(query_cams.count(pid), 1u) << pid;
  for (auto [pid, cam] : queries) {
    bool cross = false;
    for (int g : gallery_cams[pid]) cross |= g != cam;
    EXPECT_TRUE(cross) << "query of pid " << pid << " in camera " << cam + 1
                       << " has no gallery match in another camera";
  }
  // One query per camera the identity appears in.
  std::map<std::pair<int, int>, int> per_camera;
  for (auto q : queries) per_camera[q] += 1;
  for (const auto& [key, n] : per_camera) EXPECT_EQ(n, 1);
  for (const auto& [pid, cams] : gallery_cams)
    for (int cam : cams) EXPECT_EQ(query_cams[pid].count(cam), 1u);
}

TEST(SynthGenerate, SameSeedGivesIdenticalBytesWhateverTheThreads) {
  testing::TempDir dir;
  SynthOptions o = tiny_options();
  o.threads = 1;
  generate(o, dir / "a");
  o.threads = 2;
  generate(o, dir / "b");
  const auto a = snapshot(dir / "a");
  const auto b = snapshot(dir / "b");
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [path, bytes] : a) {
    auto it = b.find(path);
    ASSERT_NE(it, b.end()) << path;
    EXPECT_TRUE(it->second == bytes) << path << " differs between runs";
  }

  o.seed = 6;
  generate(o, dir / "c");
  const auto c = snapshot(dir / "c");
  EXPECT_NE(a.at("keypoints.csv"), c.at("keypoints.csv"));
  EXPECT_NE(a.at("attributes.csv"), c.at("attributes.csv"));
  int same_images = 0;
  for (const auto& [path, bytes] : c) {
    auto it = a.find(path);
    same_images += it != a.end() && it->second == bytes;
  }
  EXPECT_EQ(same_images, 1);  // only municipalities.csv is seed-independent
}

TEST(SynthGenerate, RefusesANonEmptyOutputUnlessOverwriting) {
  testing::TempDir dir;
  const fs::path out = dir / "ds";
  fs::create_directories(out);
  { std::ofstream(out / "precious.txt") << "keep me"; }
  SynthOptions o = tiny_options();
  o.ids = 4;
  o.municipalities = 1;
  o.distractors = 0;
  o.junk = 0;
  try {
    generate(o, out);
    ADD_FAILURE() << "overwrote a non-empty directory";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(out.string()), std::string::npos) << e.what();
  }
  EXPECT_EQ(slurp(out / "precious.txt"), "keep me");
  EXPECT_EQ(list_dir(dir.path()).size(), 1u);

  const SynthSummary s = generate(o, out, /*overwrite=*/true);
  EXPECT_FALSE(fs::exists(out / "precious.txt"));
  EXPECT_TRUE(fs::exists(out / "keypoints.csv"));
  EXPECT_EQ(static_cast<int>(list_dir(out / "bounding_box_train").size()), s.train_images);
  EXPECT_EQ(list_dir(dir.path()).size(), 1u);

  // An empty directory is fine without overwrite, also named with a trailing slash.
  fs::create_directories(dir / "empty");
  EXPECT_NO_THROW(generate(o, dir.path() / "empty/"));
  EXPECT_TRUE(fs::exists(dir / "empty" / "synth.json"));
  EXPECT_EQ(list_dir(dir / "empty").size(), 7u);  // 3 splits + 4 side files, no staging left
  EXPECT_EQ(list_dir(dir.path()).size(), 2u);
}

}  // namespace
}  // namespace ppreid::data::synth
