#include "core/data/attributes.h"

#include <algorithm>

#include "core/util/csv.h"

namespace ppreid::data {
namespace {

const std::vector<std::string> kHeader = {"pid",          "gender",        "hair_length",
                                          "age_group",    "hat",           "backpack",
                                          "bag",          "sleeve_length", "lower_length",
                                          "upper_color",  "lower_color"};
const std::vector<std::string> kGender = {"male", "female"};
const std::vector<std::string> kLength = {"short", "long"};
const std::vector<std::string> kAge = {"young", "teenager", "adult", "old"};
const std::vector<std::string> kYesNo = {"no", "yes"};

int word_index(const util::CsvFile& file, const util::CsvRow& row, size_t column,
               const std::vector<std::string>& words) {
  const std::string& value = row.fields[column];
  auto it = std::find(words.begin(), words.end(), value);
  if (it == words.end()) {
    std::string allowed;
    for (const auto& w : words) allowed += (allowed.empty() ? "" : "|") + w;
    file.fail(row.line, "column '" + file.header[column] + "': '" + value +
                            "' is not one of " + allowed);
  }
  return static_cast<int>(it - words.begin());
}

}  // namespace

const std::vector<std::string>& attribute_colors() {
  static const std::vector<std::string> colors = {"black", "white",  "red",  "purple", "yellow",
                                                  "gray",  "blue",   "green", "pink",  "brown"};
  return colors;
}

AttributeTable read_attributes_csv(const std::filesystem::path& path) {
  util::CsvFile file = util::read_csv(path);
  file.expect_header(kHeader);
  AttributeTable table;
  for (const auto& row : file.rows) {
    int pid = 0;
    try {
      size_t used = 0;
      pid = std::stoi(row.fields[0], &used);
      if (used != row.fields[0].size() || pid <= 0) throw std::invalid_argument("pid");
    } catch (const std::exception&) {
      file.fail(row.line, "pid '" + row.fields[0] + "' is not a positive integer");
    }
    Attributes a;
    a.gender = word_index(file, row, 1, kGender);
    a.hair_length = word_index(file, row, 2, kLength);
    a.age_group = word_index(file, row, 3, kAge);
    a.hat = word_index(file, row, 4, kYesNo) == 1;
    a.backpack = word_index(file, row, 5, kYesNo) == 1;
    a.bag = word_index(file, row, 6, kYesNo) == 1;
    a.sleeve_length = word_index(file, row, 7, kLength);
    a.lower_length = word_index(file, row, 8, kLength);
    a.upper_color = attribute_colors()[word_index(file, row, 9, attribute_colors())];
    a.lower_color = attribute_colors()[word_index(file, row, 10, attribute_colors())];
    if (!table.emplace(pid, a).second)
      file.fail(row.line, "pid " + std::to_string(pid) + " appears twice");
  }
  return table;
}

std::string format_attributes_csv(const AttributeTable& table) {
  std::string out;
  for (size_t i = 0; i < kHeader.size(); ++i) out += (i ? "," : "") + kHeader[i];
  out += '\n';
  for (const auto& [pid, a] : table) {
    out += std::to_string(pid) + "," + kGender.at(a.gender) + "," + kLength.at(a.hair_length) +
           "," + kAge.at(a.age_group) + "," + kYesNo[a.hat] + "," + kYesNo[a.backpack] + "," +
           kYesNo[a.bag] + "," + kLength.at(a.sleeve_length) + "," +
           kLength.at(a.lower_length) + "," + a.upper_color + "," + a.lower_color + "\n";
  }
  return out;
}

}  // namespace ppreid::data
