#pragma once

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <limits>
#include <sstream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "core/util/error.h"

namespace ppreid::util {

// Reads one YAML mapping into typed fields. Every key that is read is remembered, so finish()
// can reject the keys nobody asked for (almost always typos); every error names the file, the
// full dotted key and the 1-based line, which is what a user needs to fix the file.
class ConfigReader {
 public:
  static ConfigReader from_file(const std::filesystem::path& file);
  static ConfigReader from_string(const std::string& yaml, const std::string& file_label);

  // Optional key: leaves `out` untouched when absent.
  template <class T>
  void get(const std::string& key, T& out);
  // Optional key with an inclusive range check.
  template <class T>
  void get(const std::string& key, T& out, T lo, T hi);
  // Optional key restricted to a set of words.
  void get_choice(const std::string& key, std::string& out, const std::vector<std::string>& allowed);
  template <class T>
  void require(const std::string& key, T& out);

  bool has(const std::string& key) const;
  // A nested mapping; absent gives an empty section (all defaults).
  ConfigReader section(const std::string& key);
  // A list of mappings (`- {name: a, ...}` items); element i is named "key.i" in messages.
  // Absent gives an empty list.
  std::vector<ConfigReader> list(const std::string& key);
  // Throws for every key of this mapping that was never read.
  void finish() const;

  [[noreturn]] void fail(const std::string& key, const std::string& message) const;
  const std::string& file() const { return file_; }
  std::string full_key(const std::string& key) const;
  int line_of(const std::string& key) const;

 private:
  ConfigReader(YAML::Node node, std::string file, std::string prefix, int line);
  template <class T>
  T convert(const std::string& key, const YAML::Node& value) const;
  std::optional<YAML::Node> child(const std::string& key);

  YAML::Node node_;
  std::string file_;
  std::string prefix_;
  int line_;
  std::shared_ptr<std::set<std::string>> used_ = std::make_shared<std::set<std::string>>();
};

template <class T>
struct ConfigTypeName {
  static const char* get() {
    if constexpr (std::is_same_v<T, bool>) return "true or false";
    else if constexpr (std::is_integral_v<T>) return "an integer";
    else if constexpr (std::is_floating_point_v<T>) return "a number";
    else if constexpr (std::is_same_v<T, std::string>) return "a string";
    else return "a list";
  }
};

template <class T>
T ConfigReader::convert(const std::string& key, const YAML::Node& value) const {
  bool scalar_expected = !std::is_same_v<T, std::vector<float>> &&
                         !std::is_same_v<T, std::vector<double>> &&
                         !std::is_same_v<T, std::vector<int>> &&
                         !std::is_same_v<T, std::vector<std::string>>;
  if (scalar_expected && !value.IsScalar())
    fail(key, std::string("expected ") + ConfigTypeName<T>::get() + ", got a " +
                  (value.IsMap() ? "mapping" : value.IsSequence() ? "list" : "null value"));
  try {
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      // Insist on a real integer (yaml-cpp refuses "2.5" for integer types) and on the range
      // of the field's type.
      long long wide = value.as<long long>();
      if constexpr (std::is_unsigned_v<T>) {
        if (wide < 0) fail(key, "value " + value.Scalar() + " must not be negative");
        if (static_cast<unsigned long long>(wide) > std::numeric_limits<T>::max())
          fail(key, "value " + value.Scalar() + " is too large");
      } else if (wide < static_cast<long long>(std::numeric_limits<T>::min()) ||
                 wide > static_cast<long long>(std::numeric_limits<T>::max())) {
        fail(key, "value " + value.Scalar() + " does not fit");
      }
      return static_cast<T>(wide);
    } else {
      return value.as<T>();
    }
  } catch (const YAML::Exception&) {
    std::string shown = value.IsScalar() ? "'" + value.Scalar() + "'" : "a non-scalar value";
    fail(key, std::string("expected ") + ConfigTypeName<T>::get() + ", got " + shown);
  }
}

template <class T>
void ConfigReader::get(const std::string& key, T& out) {
  auto value = child(key);
  if (!value) return;
  out = convert<T>(key, *value);
}

template <class T>
void ConfigReader::get(const std::string& key, T& out, T lo, T hi) {
  auto value = child(key);
  if (!value) return;
  T v = convert<T>(key, *value);
  if (v < lo || v > hi) {
    std::ostringstream msg;
    msg << "value " << v << " is out of range; allowed is " << lo << " to " << hi;
    fail(key, msg.str());
  }
  out = v;
}

template <class T>
void ConfigReader::require(const std::string& key, T& out) {
  if (!has(key)) fail(key, "is required but missing");
  get(key, out);
}

}  // namespace ppreid::util
