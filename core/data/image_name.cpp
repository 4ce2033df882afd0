#include "core/data/image_name.h"

#include <charconv>
#include <cstdio>
#include <string_view>

namespace ppreid::data {
namespace {

// Hand-rolled scanning instead of std::regex: it is called once per file of 36k-file datasets
// and std::regex is both slow and easy to get subtly permissive.
class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}
  bool literal(std::string_view lit) {
    if (s_.substr(pos_, lit.size()) != lit) return false;
    pos_ += lit.size();
    return true;
  }
  // Non-negative decimal of 1..max_digits digits (exactly `digits` when fixed > 0).
  bool number(int& out, int max_digits, int fixed = 0) {
    size_t start = pos_;
    while (pos_ < s_.size() && pos_ - start < static_cast<size_t>(max_digits) &&
           s_[pos_] >= '0' && s_[pos_] <= '9')
      ++pos_;
    size_t n = pos_ - start;
    if (n == 0 || (fixed > 0 && n != static_cast<size_t>(fixed))) return false;
    std::from_chars(s_.data() + start, s_.data() + pos_, out);
    return true;
  }
  bool at_end() const { return pos_ == s_.size(); }

 private:
  std::string_view s_;
  size_t pos_ = 0;
};

bool parse_pid(Scanner& sc, int& pid) {
  if (sc.literal("-1")) {
    pid = -1;
    return true;
  }
  return sc.number(pid, 5);
}

bool image_extension(Scanner& sc) {
  return sc.literal(".jpg") || sc.literal(".jpeg") || sc.literal(".png");
}

}  // namespace

const char* layout_name(Layout layout) {
  return layout == Layout::kMarket1501 ? "market1501" : "dukemtmc";
}

std::optional<ImageName> parse_image_name(Layout layout, const std::string& filename) {
  Scanner sc(filename);
  ImageName name;
  int camera = 0, unused = 0;
  if (!parse_pid(sc, name.pid) || !sc.literal("_c") || !sc.number(camera, 3)) return std::nullopt;
  if (layout == Layout::kMarket1501) {
    if (!sc.literal("s") || !sc.number(unused, 3) || !sc.literal("_") ||
        !sc.number(unused, 6, 6) || !sc.literal("_") || !sc.number(unused, 2, 2))
      return std::nullopt;
  } else {
    if (!sc.literal("_f") || !sc.number(unused, 7, 7)) return std::nullopt;
  }
  if (!image_extension(sc) || !sc.at_end() || camera < 1) return std::nullopt;
  name.camid = camera - 1;
  return name;
}

std::string market_image_name(int pid, int camid, int sequence, int frame, int box) {
  char buf[64];
  if (pid < 0)
    std::snprintf(buf, sizeof buf, "-1_c%ds%d_%06d_%02d.jpg", camid + 1, sequence, frame, box);
  else
    std::snprintf(buf, sizeof buf, "%04d_c%ds%d_%06d_%02d.jpg", pid, camid + 1, sequence, frame,
                  box);
  return buf;
}

}  // namespace ppreid::data
