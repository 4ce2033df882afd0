#include "core/util/config.h"

#include <sstream>

namespace ppreid::util {

ConfigReader::ConfigReader(YAML::Node node, std::string file, std::string prefix, int line)
    : node_(std::move(node)), file_(std::move(file)), prefix_(std::move(prefix)), line_(line) {}

ConfigReader ConfigReader::from_file(const std::filesystem::path& file) {
  if (!std::filesystem::exists(file))
    throw Error("config file '" + file.string() + "' does not exist; see configs/ for examples");
  YAML::Node root;
  try {
    root = YAML::LoadFile(file.string());
  } catch (const YAML::ParserException& e) {
    throw Error(file.string() + ":" + std::to_string(e.mark.line + 1) +
                ": YAML syntax error: " + e.msg);
  } catch (const YAML::Exception& e) {
    throw Error("cannot read config file '" + file.string() + "': " + e.what());
  }
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap())
    throw Error(file.string() + ":1: the top level must be a mapping of sections (key: value)");
  return ConfigReader(root, file.string(), "", 1);
}

ConfigReader ConfigReader::from_string(const std::string& yaml, const std::string& file_label) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::ParserException& e) {
    throw Error(file_label + ":" + std::to_string(e.mark.line + 1) +
                ": YAML syntax error: " + e.msg);
  }
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap())
    throw Error(file_label + ":1: the top level must be a mapping of sections (key: value)");
  return ConfigReader(root, file_label, "", 1);
}

std::string ConfigReader::full_key(const std::string& key) const {
  return prefix_.empty() ? key : prefix_ + "." + key;
}

int ConfigReader::line_of(const std::string& key) const {
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    if (it->first.Scalar() == key) return it->first.Mark().line + 1;
  }
  return line_;
}

void ConfigReader::fail(const std::string& key, const std::string& message) const {
  throw Error(file_ + ":" + std::to_string(line_of(key)) + ": key '" + full_key(key) + "': " +
              message);
}

bool ConfigReader::has(const std::string& key) const {
  return node_.IsMap() && node_[key].IsDefined() && !node_[key].IsNull();
}

std::optional<YAML::Node> ConfigReader::child(const std::string& key) {
  used_->insert(key);
  if (!has(key)) return std::nullopt;
  return node_[key];
}

std::vector<ConfigReader> ConfigReader::list(const std::string& key) {
  std::vector<ConfigReader> out;
  auto value = child(key);
  if (!value) return out;
  if (!value->IsSequence()) fail(key, "expected a list (lines starting with '- ')");
  for (std::size_t i = 0; i < value->size(); ++i) {
    YAML::Node item = (*value)[i];
    const std::string name = full_key(key) + "." + std::to_string(i);
    const int line = item.Mark().line + 1;
    if (!item.IsMap())
      throw Error(file_ + ":" + std::to_string(line) + ": key '" + name +
                  "': expected a mapping (key: value pairs)");
    out.push_back(ConfigReader(item, file_, name, line));
  }
  return out;
}

ConfigReader ConfigReader::section(const std::string& key) {
  auto value = child(key);
  int line = line_of(key);
  if (!value) return ConfigReader(YAML::Node(YAML::NodeType::Map), file_, full_key(key), line);
  if (!value->IsMap()) fail(key, "expected a mapping (a section of key: value lines)");
  return ConfigReader(*value, file_, full_key(key), line);
}

void ConfigReader::get_choice(const std::string& key, std::string& out,
                              const std::vector<std::string>& allowed) {
  std::string value = out;
  get(key, value);
  for (const auto& a : allowed)
    if (a == value) {
      out = value;
      return;
    }
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
  fail(key, "'" + value + "' is not one of: " + list);
}

void ConfigReader::finish() const {
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    const std::string key = it->first.Scalar();
    if (!used_->count(key))
      throw Error(file_ + ":" + std::to_string(it->first.Mark().line + 1) + ": unknown key '" +
                  full_key(key) + "'; check the spelling against configs/README.md");
  }
}

}  // namespace ppreid::util
