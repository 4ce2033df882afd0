#include "core/util/csv.h"

#include <fstream>

#include "core/util/error.h"

namespace ppreid::util {
namespace {

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t comma = line.find(',', start);
    std::string field = line.substr(start, comma == std::string::npos ? comma : comma - start);
    while (!field.empty() && (field.back() == ' ' || field.back() == '\r')) field.pop_back();
    size_t first = field.find_first_not_of(' ');
    out.push_back(first == std::string::npos ? "" : field.substr(first));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace

void CsvFile::fail(int line, const std::string& message) const {
  throw Error(path.string() + ":" + std::to_string(line) + ": " + message);
}

void CsvFile::expect_header(const std::vector<std::string>& expected) const {
  if (header == expected) return;
  std::string want;
  for (const auto& h : expected) want += (want.empty() ? "" : ",") + h;
  fail(1, "unexpected header; expected '" + want + "'");
}

CsvFile read_csv(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot open '" + path.string() + "' for reading");
  CsvFile file;
  file.path = path;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    if (file.header.empty()) {
      file.header = split(line);
      continue;
    }
    file.rows.push_back({number, split(line)});
    if (file.rows.back().fields.size() != file.header.size())
      file.fail(number, "expected " + std::to_string(file.header.size()) + " fields, found " +
                            std::to_string(file.rows.back().fields.size()));
  }
  if (file.header.empty()) throw Error("'" + path.string() + "' is empty (no header line)");
  return file;
}

}  // namespace ppreid::util
