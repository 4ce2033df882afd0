#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace ppreid::util {

// A minimal reader for the project's side files (comma-separated, no quoting needed because the
// fields are numbers, words and file names without commas). Keeps line numbers so errors can
// point at `file:line`.
struct CsvRow {
  int line = 0;
  std::vector<std::string> fields;
};

struct CsvFile {
  std::filesystem::path path;
  std::vector<std::string> header;
  std::vector<CsvRow> rows;

  // Throws ppreid::Error "<file>:<line>: <message>".
  [[noreturn]] void fail(int line, const std::string& message) const;
  // Checks that the header is exactly `expected` (order included).
  void expect_header(const std::vector<std::string>& expected) const;
};

CsvFile read_csv(const std::filesystem::path& path);

}  // namespace ppreid::util
