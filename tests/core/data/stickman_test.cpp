#include "core/data/stickman.h"

#include <gtest/gtest.h>

#include "core/util/error.h"

namespace ppreid::data {
namespace {

// A frontal standing pose (normalized coordinates).
Pose standing() {
  Pose p;
  auto set = [&](Joint j, float x, float y) { p[j] = {x, y}; };
  set(Joint::kNose, 0.5f, 0.12f);
  set(Joint::kNeck, 0.5f, 0.22f);
  set(Joint::kRShoulder, 0.35f, 0.25f);
  set(Joint::kLShoulder, 0.65f, 0.25f);
  set(Joint::kRElbow, 0.30f, 0.40f);
  set(Joint::kLElbow, 0.70f, 0.40f);
  set(Joint::kRWrist, 0.28f, 0.52f);
  set(Joint::kLWrist, 0.72f, 0.52f);
  set(Joint::kRHip, 0.40f, 0.55f);
  set(Joint::kLHip, 0.60f, 0.55f);
  set(Joint::kRKnee, 0.40f, 0.72f);
  set(Joint::kLKnee, 0.60f, 0.72f);
  set(Joint::kRAnkle, 0.40f, 0.90f);
  set(Joint::kLAnkle, 0.60f, 0.90f);
  set(Joint::kREye, 0.47f, 0.10f);
  set(Joint::kLEye, 0.53f, 0.10f);
  set(Joint::kREar, 0.44f, 0.11f);
  set(Joint::kLEar, 0.56f, 0.11f);
  return p;
}

// Pixel of a normalized point, the renderer's convention (pixel centres at x * W - 0.5).
uchar at(const cv::Mat& m, int channel, float x, float y) {
  const int col = static_cast<int>(std::lround(x * m.cols - 0.5f));
  const int row = static_cast<int>(std::lround(y * m.rows - 0.5f));
  return m.at<cv::Vec3b>(row, col)[channel];
}

TEST(Stickman, TorsoChannelFilledInsideTheQuad) {
  const cv::Mat m = render_stickman(standing(), 128, 64);
  ASSERT_EQ(m.type(), CV_8UC3);
  ASSERT_EQ(m.size(), cv::Size(64, 128));
  // Points well inside the quad (0.35..0.65 at y=0.25, 0.40..0.60 at y=0.55).
  const std::pair<float, float> inside[] = {
      {0.5f, 0.4f}, {0.4f, 0.3f}, {0.58f, 0.5f}, {0.45f, 0.52f}};
  for (auto [x, y] : inside) {
    EXPECT_EQ(at(m, 2, x, y), 255) << x << "," << y;
    EXPECT_EQ(at(m, 0, x, y), 0) << x << "," << y;
    EXPECT_EQ(at(m, 1, x, y), 0) << x << "," << y;
  }
  // Outside the quad and away from limbs: nothing.
  const std::pair<float, float> outside[] = {
      {0.05f, 0.05f}, {0.5f, 0.65f}, {0.9f, 0.5f}, {0.2f, 0.95f}};
  for (auto [x, y] : outside)
    for (int c = 0; c < 3; ++c) EXPECT_EQ(at(m, c, x, y), 0) << x << "," << y << " ch " << c;
  // Neck-nose line sits in the torso channel.
  EXPECT_EQ(at(m, 2, 0.5f, 0.17f), 255);
  // Binary: every value is 0 or 255.
  const cv::Mat flat = m.reshape(1);
  EXPECT_EQ(cv::countNonZero(flat == 0) + cv::countNonZero(flat == 255),
            static_cast<int>(flat.total()));
}

TEST(Stickman, TorsoAreaMatchesTheQuadAtAnyResolution) {
  // Trapezoid: widths 0.3 and 0.2, height 0.3 -> area 0.075 of the image. Without nose and neck
  // the torso channel holds only the quad.
  Pose p = standing();
  p[Joint::kNose] = {};
  p[Joint::kNeck] = {};
  for (auto [h, w] : {std::pair{128, 64}, std::pair{256, 128}, std::pair{512, 256}}) {
    const cv::Mat m = render_stickman(p, h, w);
    cv::Mat torso;
    cv::extractChannel(m, torso, 2);
    const double fraction = cv::countNonZero(torso > 127) / static_cast<double>(h * w);
    EXPECT_NEAR(fraction, 0.075, 0.006) << h << "x" << w;
  }
}

TEST(Stickman, RightLimbOnlyInRightChannel) {
  const cv::Mat m = render_stickman(standing(), 128, 64);
  // Points along r_shoulder (0.35,0.25) -> r_elbow (0.30,0.40).
  for (float t : {0.25f, 0.5f, 0.75f}) {
    const float x = 0.35f + t * (0.30f - 0.35f);
    const float y = 0.25f + t * (0.40f - 0.25f);
    EXPECT_EQ(at(m, 0, x, y), 255) << "t=" << t;
    EXPECT_EQ(at(m, 1, x, y), 0) << "t=" << t;
  }
  // The mirrored left segment lands in channel 1 only.
  EXPECT_EQ(at(m, 1, 0.675f, 0.325f), 255);
  EXPECT_EQ(at(m, 0, 0.675f, 0.325f), 0);
  // Right leg, knee -> ankle.
  EXPECT_EQ(at(m, 0, 0.40f, 0.81f), 255);
  EXPECT_EQ(at(m, 1, 0.40f, 0.81f), 0);
}

TEST(Stickman, MissingJointSkipsItsLimbs) {
  Pose p = standing();
  p[Joint::kRElbow] = {};  // upper arm and forearm both need the elbow
  const cv::Mat m = render_stickman(p, 128, 64);
  EXPECT_EQ(at(m, 0, 0.325f, 0.325f), 0);
  EXPECT_EQ(at(m, 0, 0.29f, 0.46f), 0);
  EXPECT_EQ(at(m, 1, 0.675f, 0.325f), 255);  // the left arm is untouched
  EXPECT_EQ(at(m, 2, 0.5f, 0.4f), 255);      // and so is the torso

  p = standing();
  p[Joint::kLHip] = {};  // torso needs all four corners
  const cv::Mat no_torso = render_stickman(p, 128, 64);
  EXPECT_EQ(at(no_torso, 2, 0.5f, 0.4f), 0);
  EXPECT_EQ(at(no_torso, 2, 0.5f, 0.17f), 255);  // neck-nose still drawn

  const cv::Mat empty = render_stickman(Pose{}, 64, 32);
  EXPECT_EQ(cv::countNonZero(empty.reshape(1)), 0);
}

TEST(Stickman, ThicknessScalesWithResolution) {
  // min(h, w) / 20, rounded, at least 1.
  const struct {
    int h, w, expected;
  } cases[] = {{128, 64, 3}, {256, 128, 6}, {64, 32, 2}, {16, 8, 1}, {512, 256, 13}, {1, 1, 1}};
  for (const auto& c : cases)
    EXPECT_EQ(stickman_thickness(c.h, c.w), c.expected) << c.h << "x" << c.w;

  // Measured: a vertical thigh (r_hip -> r_knee at x = 0.4) cut by a horizontal line. OpenCV
  // rasterizes a t-pixel line with up to one extra pixel on each side, so expect [t, t + 2].
  Pose p;
  p[Joint::kRHip] = {0.4f, 0.55f};
  p[Joint::kRKnee] = {0.4f, 0.72f};
  int previous = 0;
  for (const auto& c : {cases[3], cases[2], cases[0], cases[1], cases[4]}) {
    const cv::Mat m = render_stickman(p, c.h, c.w);
    cv::Mat right;
    cv::extractChannel(m, right, 0);
    const int width = cv::countNonZero(right.row(static_cast<int>(0.63f * c.h)));
    EXPECT_GE(width, c.expected) << c.h << "x" << c.w;
    EXPECT_LE(width, c.expected + 2) << c.h << "x" << c.w;
    EXPECT_GE(width, previous) << c.h << "x" << c.w;
    previous = width;
  }
}

TEST(Stickman, TensorIsTheImageScaledToUnitRange) {
  const Pose p = standing();
  const cv::Mat m = render_stickman(p, 96, 48);
  const torch::Tensor t = stickman_tensor(p, 96, 48);
  ASSERT_EQ(t.sizes(), (std::vector<int64_t>{3, 96, 48}));
  ASSERT_EQ(t.scalar_type(), torch::kFloat32);
  EXPECT_GE(t.min().item<float>(), 0.f);
  EXPECT_LE(t.max().item<float>(), 1.f);
  EXPECT_EQ(t.max().item<float>(), 1.f);
  for (int c = 0; c < 3; ++c) {
    cv::Mat plane;
    cv::extractChannel(m, plane, c);
    plane.convertTo(plane, CV_32F, 1.0 / 255.0);
    const torch::Tensor expected = torch::from_blob(plane.data, {96, 48}, torch::kFloat32).clone();
    EXPECT_TRUE(torch::allclose(t[c], expected)) << "channel " << c;
  }
  EXPECT_THROW(render_stickman(p, 0, 10), Error);
  EXPECT_THROW(stickman_tensor(p, 10, -1), Error);
}

TEST(Stickman, UsableForPoseConditioningNeedsAShoulderAndAHip) {
  EXPECT_TRUE(usable_for_pose_conditioning(standing()));
  EXPECT_FALSE(usable_for_pose_conditioning(Pose{}));
  struct Case {
    std::vector<Joint> hidden;
    bool usable;
  };
  const Case cases[] = {
      {{Joint::kLShoulder}, true},                       // side view
      {{Joint::kLShoulder, Joint::kLHip}, true},         // side view, far side hidden
      {{Joint::kRShoulder, Joint::kLShoulder}, false},   // no shoulder at all
      {{Joint::kRHip, Joint::kLHip}, false},             // no hip at all
      {{Joint::kNose, Joint::kRWrist, Joint::kLAnkle}, true},
  };
  for (const Case& c : cases) {
    Pose p = standing();
    for (Joint j : c.hidden) p[j] = {-1.f, 0.5f};
    EXPECT_EQ(usable_for_pose_conditioning(p), c.usable) << static_cast<int>(c.hidden[0]);
  }
}

TEST(Stickman, SideViewTorsoIsABandFromShoulderToHip) {
  Pose p = standing();
  p[Joint::kLShoulder] = {};
  p[Joint::kLHip] = {};
  const cv::Mat m = render_stickman(p, 128, 64);
  cv::Mat torso;
  cv::extractChannel(m, torso, 2);
  const Keypoint s = p[Joint::kRShoulder], h = p[Joint::kRHip];
  // The midpoint of the visible shoulder-hip segment is drawn; a point half the image width
  // away horizontally is not (the edge-on torso is narrow).
  const int mx = static_cast<int>((s.x + h.x) / 2 * 64), my = static_cast<int>((s.y + h.y) / 2 * 128);
  EXPECT_EQ(torso.at<uchar>(my, mx), 255);
  EXPECT_EQ(torso.at<uchar>(my, (mx + 32) % 64), 0);
  // With both shoulders and hips the torso is the filled quad: wider than the band.
  cv::Mat full;
  cv::extractChannel(render_stickman(standing(), 128, 64), full, 2);
  EXPECT_GT(cv::countNonZero(full), cv::countNonZero(torso));
}

}  // namespace
}  // namespace ppreid::data
