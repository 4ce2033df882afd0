#pragma once

#include <array>
#include <filesystem>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ppreid::data {

// The 18 joints of the COCO/OpenPose body model, in OpenPose's order.
enum class Joint : int {
  kNose = 0, kNeck, kRShoulder, kRElbow, kRWrist, kLShoulder, kLElbow, kLWrist,
  kRHip, kRKnee, kRAnkle, kLHip, kLKnee, kLAnkle, kREye, kLEye, kREar, kLEar
};
inline constexpr int kNumJoints = 18;

const char* joint_name(int joint);  // "nose", "neck", "r_shoulder", ...

// Normalized image coordinates: x in [0,1] from the left, y in [0,1] from the top. A negative
// coordinate means the joint is not visible (occluded, outside the crop, or not detected).
struct Keypoint {
  float x = -1.f;
  float y = -1.f;
  bool visible() const { return x >= 0.f && y >= 0.f; }
};

struct Pose {
  std::array<Keypoint, kNumJoints> joints{};
  const Keypoint& operator[](Joint j) const { return joints[static_cast<int>(j)]; }
  Keypoint& operator[](Joint j) { return joints[static_cast<int>(j)]; }
  int visible_count() const;
  // Both shoulders and both hips visible: what pose-conditioned models need to place a torso.
  bool has_torso() const;
};

// keypoints.csv: header `image,nose_x,nose_y,neck_x,...,l_ear_y`, then one row per image whose
// `image` is the path relative to the dataset root (e.g. `bounding_box_train/0002_c1s1_000451_03.jpg`).
using KeypointTable = std::unordered_map<std::string, Pose>;

KeypointTable read_keypoints_csv(const std::filesystem::path& file);
std::string format_keypoints_csv(const std::vector<std::pair<std::string, Pose>>& rows);

}  // namespace ppreid::data
