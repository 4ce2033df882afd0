#pragma once

#include <optional>
#include <string>

namespace ppreid::data {

enum class Layout { kMarket1501, kDukeMTMC };

const char* layout_name(Layout layout);  // "market1501", "dukemtmc"

// What a ReID file name says about its image. pid -1 marks junk (dropped by readers), pid 0 a
// distractor (kept in the gallery as a negative). camid is 0-based; file names are 1-based.
struct ImageName {
  int pid = -1;
  int camid = 0;
  bool operator==(const ImageName&) const = default;
};

// Market-1501: `0002_c1s1_000451_03.jpg` (pid, camera, sequence, frame, box).
// DukeMTMC-reID: `0005_c2_f0046985.jpg` (pid, camera, frame).
// Returns nullopt when the name does not follow the layout.
std::optional<ImageName> parse_image_name(Layout layout, const std::string& filename);

// The canonical Market-1501 name for an image (used by the synthetic generator).
std::string market_image_name(int pid, int camid, int sequence, int frame, int box);

}  // namespace ppreid::data
