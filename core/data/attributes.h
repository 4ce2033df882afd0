#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace ppreid::data {

// Per-identity appearance attributes, following the Market-1501 attribute annotation. Codes are
// small integers so attribute-attack classifiers can use them as labels directly.
struct Attributes {
  int gender = 0;        // 0 male, 1 female
  int hair_length = 0;   // 0 short, 1 long
  int age_group = 2;     // 0 young, 1 teenager, 2 adult, 3 old
  bool hat = false;
  bool backpack = false;
  bool bag = false;      // handbag or shoulder bag
  int sleeve_length = 1; // 0 short, 1 long
  int lower_length = 1;  // 0 short (shorts/skirt), 1 long (trousers)
  std::string upper_color = "gray";
  std::string lower_color = "black";
  bool operator==(const Attributes&) const = default;
};

// Colour words allowed in attributes.csv (Market-1501's attribute vocabulary).
const std::vector<std::string>& attribute_colors();

// attributes.csv: header
// `pid,gender,hair_length,age_group,hat,backpack,bag,sleeve_length,lower_length,upper_color,lower_color`
// with words: gender male|female, hair_length short|long, age_group young|teenager|adult|old,
// hat/backpack/bag yes|no, sleeve_length and lower_length short|long, colours from
// attribute_colors().
using AttributeTable = std::map<int, Attributes>;

AttributeTable read_attributes_csv(const std::filesystem::path& file);
std::string format_attributes_csv(const AttributeTable& table);

}  // namespace ppreid::data
