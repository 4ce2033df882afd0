#pragma once

// Result tables for summary.md (GitHub pipe tables) and report.html.

#include <string>
#include <string_view>
#include <vector>

namespace ppreid::sim::report {

enum class Align { kLeft, kRight };

struct Table {
  std::string caption;
  std::vector<std::string> header;
  // One per column; empty = column 0 left (names), the others right (numbers).
  std::vector<Align> align;
  std::vector<std::vector<std::string>> rows;  // each exactly header.size() cells

  // Caption as a bold line, a blank line, then the pipe table with columns padded to a common
  // width so it also reads well in a terminal. '|' in cells is escaped, newlines become spaces.
  std::string to_markdown() const;
  // <table> with <caption>; right-aligned cells carry class="num" (styled by render_html).
  std::string to_html() const;
};

// Fixed-point text: format_fixed(0.1234, 3) == "0.123"; NaN -> "n/a", infinities -> "inf" /
// "-inf"; never "-0.000". Independent of the C locale.
std::string format_fixed(double value, int decimals);

// printf's %g: the shortest of fixed and exponent notation with 6 significant digits, for
// parameters in names and captions (format_general(0.5) == "0.5", 1e-05 for 0.00001).
std::string format_general(double value);

// Escapes & < > " ' so the text is safe in element content and quoted attributes.
std::string html_escape(std::string_view text);

}  // namespace ppreid::sim::report
