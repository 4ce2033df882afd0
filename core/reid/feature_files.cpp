#include "core/reid/feature_files.h"

#include <charconv>
#include <cmath>
#include <string>
#include <string_view>
#include <system_error>

#include "core/util/atomic_file.h"
#include "core/util/error.h"

namespace ppreid::reid {
namespace fs = std::filesystem;
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// Parses one file line by line straight from the buffer, without a std::string per field:
// a Market-1501 gallery at 2048-d is 30 million numbers.
class Parser {
 public:
  Parser(const fs::path& path, std::string_view text) : where_(path.string()), text_(text) {}

  FeatureSet parse() {
    std::vector<float> values;
    FeatureSet set;
    int64_t dim = -1;
    int first_line = 0;
    int line = 0;
    size_t pos = 0;
    while (pos < text_.size()) {
      size_t eol = text_.find('\n', pos);
      if (eol == std::string_view::npos) eol = text_.size();
      std::string_view row = text_.substr(pos, eol - pos);
      pos = eol + 1;
      ++line;
      if (trim(row).empty()) continue;

      int64_t fields = 0;
      size_t start = 0;
      while (true) {
        size_t comma = row.find(',', start);
        std::string_view field =
            trim(row.substr(start, comma == std::string_view::npos ? comma : comma - start));
        if (fields == 0) {
          set.pids.push_back(parse_int(field, line, "pid"));
        } else if (fields == 1) {
          set.camids.push_back(parse_int(field, line, "camid"));
        } else {
          values.push_back(parse_float(field, line, fields - 1));
        }
        ++fields;
        if (comma == std::string_view::npos) break;
        start = comma + 1;
      }
      const int64_t features = fields - 2;
      if (features < 1)
        fail(line, "expected pid,camid,f_1,...,f_d but found " + std::to_string(fields) + " field" +
                       (fields == 1 ? "" : "s"));
      if (dim < 0) {
        dim = features;
        first_line = line;
      } else if (features != dim) {
        fail(line, std::to_string(features) + " features, expected " + std::to_string(dim) +
                       " as in line " + std::to_string(first_line));
      }
    }
    if (dim < 0)
      throw Error(where_ +
                  ": no feature rows; expected one 'pid,camid,f_1,...,f_d' line per "
                  "image");
    const auto n = static_cast<int64_t>(set.pids.size());
    set.features = torch::from_blob(values.data(), {n, dim}, torch::kFloat32).clone();
    return set;
  }

 private:
  [[noreturn]] void fail(int line, const std::string& message) const {
    throw Error(where_ + ":" + std::to_string(line) + ": " + message);
  }

  int parse_int(std::string_view field, int line, const char* what) const {
    int value = 0;
    auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), value);
    if (field.empty() || ec != std::errc() || end != field.data() + field.size())
      fail(line, std::string(what) + " '" + std::string(field) + "' is not an integer");
    return value;
  }

  // `index` is 1-based, matching the f_1..f_d naming of the format.
  float parse_float(std::string_view field, int line, int64_t index) const {
    float value = 0;
    auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), value);
    if (field.empty() || end != field.data() + field.size() ||
        (ec != std::errc() && ec != std::errc::result_out_of_range))
      fail(line,
           "feature " + std::to_string(index) + " '" + std::string(field) + "' is not a number");
    if (ec == std::errc::result_out_of_range)
      fail(line, "feature " + std::to_string(index) + " '" + std::string(field) +
                     "' is out of float32 range");
    if (std::isnan(value)) fail(line, "feature " + std::to_string(index) + " is nan");
    if (std::isinf(value)) fail(line, "feature " + std::to_string(index) + " is inf");
    return value;
  }

  std::string where_;
  std::string_view text_;
};

}  // namespace

FeatureSet read_feature_csv(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec))
    throw Error("feature file '" + path.string() +
                "' does not exist; write one 'pid,camid,f_1,...,f_d' line per image");
  const std::string text = util::read_file(path);
  return Parser(path, text).parse();
}

void write_feature_csv(const fs::path& path, const FeatureSet& set) {
  if (!set.features.defined() || set.features.dim() != 2 || set.features.size(0) == 0 ||
      set.features.size(1) == 0)
    throw Error("cannot write '" + path.string() + "': features must be a non-empty 2-D tensor");
  const int64_t n = set.features.size(0), dim = set.features.size(1);
  if (static_cast<int64_t>(set.pids.size()) != n || static_cast<int64_t>(set.camids.size()) != n)
    throw Error("cannot write '" + path.string() + "': " + std::to_string(n) +
                " feature rows but " + std::to_string(set.pids.size()) + " pids and " +
                std::to_string(set.camids.size()) + " camids");
  torch::Tensor f = set.features.to(torch::kCPU, torch::kFloat32).contiguous();
  // A NaN would be written as "nan" and then rejected by the reader; refuse it here instead.
  torch::Tensor finite_rows = torch::isfinite(f).all(1);
  if (!finite_rows.all().item<bool>())
    throw Error("cannot write '" + path.string() + "': feature row " +
                std::to_string(torch::nonzero(finite_rows.logical_not())[0][0].item<int64_t>()) +
                " (0-based) contains NaN or Inf, or overflows float32");
  const float* data = f.data_ptr<float>();
  std::string out;
  out.reserve(static_cast<size_t>(n * (dim * 12 + 16)));
  char buf[64];
  auto append = [&](auto value) {
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
    out.append(buf, end);
  };
  for (int64_t i = 0; i < n; ++i) {
    append(set.pids[i]);
    out.push_back(',');
    append(set.camids[i]);
    for (int64_t j = 0; j < dim; ++j) {
      out.push_back(',');
      append(data[i * dim + j]);
    }
    out.push_back('\n');
  }
  util::write_file_atomic(path, out);
}

}  // namespace ppreid::reid
