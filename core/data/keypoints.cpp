#include "core/data/keypoints.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "core/util/csv.h"

namespace ppreid::data {
namespace {

constexpr const char* kJointNames[kNumJoints] = {
    "nose",    "neck",   "r_shoulder", "r_elbow", "r_wrist", "l_shoulder",
    "l_elbow", "l_wrist", "r_hip",     "r_knee",  "r_ankle", "l_hip",
    "l_knee",  "l_ankle", "r_eye",     "l_eye",   "r_ear",   "l_ear"};

std::vector<std::string> keypoint_header() {
  std::vector<std::string> header{"image"};
  for (const char* name : kJointNames) {
    header.push_back(std::string(name) + "_x");
    header.push_back(std::string(name) + "_y");
  }
  return header;
}

float parse_coordinate(const util::CsvFile& file, const util::CsvRow& row, size_t column) {
  const std::string& text = row.fields[column];
  float value = 0.f;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value))
    file.fail(row.line, "column '" + file.header[column] + "': '" + text + "' is not a number");
  // Negative means "not visible"; a visible coordinate must be inside the normalized crop.
  if (value > 1.f + 1e-4f)
    file.fail(row.line, "column '" + file.header[column] + "': " + text +
                            " is above 1; coordinates must be normalized to [0,1]");
  return value < 0.f ? -1.f : std::min(value, 1.f);
}

}  // namespace

const char* joint_name(int joint) {
  return joint >= 0 && joint < kNumJoints ? kJointNames[joint] : "unknown";
}

int Pose::visible_count() const {
  int n = 0;
  for (const auto& k : joints) n += k.visible() ? 1 : 0;
  return n;
}

bool Pose::has_torso() const {
  return (*this)[Joint::kRShoulder].visible() && (*this)[Joint::kLShoulder].visible() &&
         (*this)[Joint::kRHip].visible() && (*this)[Joint::kLHip].visible();
}

KeypointTable read_keypoints_csv(const std::filesystem::path& path) {
  util::CsvFile file = util::read_csv(path);
  file.expect_header(keypoint_header());
  KeypointTable table;
  table.reserve(file.rows.size());
  for (const auto& row : file.rows) {
    Pose pose;
    for (int j = 0; j < kNumJoints; ++j) {
      pose.joints[j].x = parse_coordinate(file, row, 1 + 2 * j);
      pose.joints[j].y = parse_coordinate(file, row, 2 + 2 * j);
      // Half-visible joints are meaningless; treat them as not visible.
      if (!pose.joints[j].visible()) pose.joints[j] = Keypoint{};
    }
    if (!table.emplace(row.fields[0], pose).second)
      file.fail(row.line, "image '" + row.fields[0] + "' appears twice");
  }
  return table;
}

std::string format_keypoints_csv(const std::vector<std::pair<std::string, Pose>>& rows) {
  std::string out;
  out.reserve(64 + rows.size() * 200);
  auto header = keypoint_header();
  for (size_t i = 0; i < header.size(); ++i) out += (i ? "," : "") + header[i];
  out += '\n';
  char buf[32];
  for (const auto& [image, pose] : rows) {
    out += image;
    for (const auto& k : pose.joints) {
      if (k.visible()) {
        std::snprintf(buf, sizeof buf, ",%.4f,%.4f", k.x, k.y);
        out += buf;
      } else {
        out += ",-1,-1";
      }
    }
    out += '\n';
  }
  return out;
}

}  // namespace ppreid::data
