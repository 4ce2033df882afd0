#include "simulations/report/table.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "core/util/error.h"

namespace ppreid::sim::report {
namespace {

std::string table_name(const Table& t) {
  return t.caption.empty() ? std::string("(untitled table)") : "'" + t.caption + "'";
}

// Shape errors are programming mistakes of the caller; name the table so the report that hit
// them can be found.
void validate(const Table& t) {
  if (t.header.empty()) throw Error("table " + table_name(t) + " has no columns");
  if (!t.align.empty() && t.align.size() != t.header.size())
    throw Error("table " + table_name(t) + " has " + std::to_string(t.align.size()) +
                " alignments for " + std::to_string(t.header.size()) + " columns");
  for (std::size_t r = 0; r < t.rows.size(); ++r)
    if (t.rows[r].size() != t.header.size())
      throw Error("table " + table_name(t) + ": row " + std::to_string(r) + " has " +
                  std::to_string(t.rows[r].size()) + " cells, the header has " +
                  std::to_string(t.header.size()));
}

Align align_of(const Table& t, std::size_t column) {
  if (!t.align.empty()) return t.align[column];
  return column == 0 ? Align::kLeft : Align::kRight;
}

std::string markdown_cell(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '|')
      out += "\\|";
    else if (c == '\n' || c == '\r')
      out += ' ';
    else
      out += c;
  }
  return out;
}

// Width as a terminal shows it: UTF-8 continuation bytes take no column.
std::size_t display_width(std::string_view text) {
  std::size_t n = 0;
  for (unsigned char c : text) n += (c & 0xC0) != 0x80;
  return n;
}

void append_padded(std::string& out, const std::string& cell, std::size_t width, Align align) {
  const std::string pad(width - display_width(cell), ' ');
  out += align == Align::kRight ? pad + cell : cell + pad;
}

}  // namespace

std::string Table::to_markdown() const {
  validate(*this);
  const std::size_t n = header.size();
  std::vector<std::vector<std::string>> cells;  // escaped; [0] is the header
  cells.reserve(rows.size() + 1);
  auto add = [&](const std::vector<std::string>& row) {
    cells.emplace_back();
    for (const auto& c : row) cells.back().push_back(markdown_cell(c));
  };
  add(header);
  for (const auto& row : rows) add(row);
  // At least 3 so the delimiter row (":--" / "--:") is valid GitHub markdown.
  std::vector<std::size_t> width(n, 3);
  for (const auto& row : cells)
    for (std::size_t c = 0; c < n; ++c) width[c] = std::max(width[c], display_width(row[c]));

  std::string out;
  if (!caption.empty()) out += "**" + markdown_cell(caption) + "**\n\n";
  auto line = [&](const std::vector<std::string>& row) {
    out += '|';
    for (std::size_t c = 0; c < n; ++c) {
      out += ' ';
      append_padded(out, row[c], width[c], align_of(*this, c));
      out += " |";
    }
    out += '\n';
  };
  line(cells[0]);
  out += '|';
  for (std::size_t c = 0; c < n; ++c) {
    const std::string dashes(width[c] - 1, '-');
    out += align_of(*this, c) == Align::kRight ? " " + dashes + ": |" : " :" + dashes + " |";
  }
  out += '\n';
  for (std::size_t r = 1; r < cells.size(); ++r) line(cells[r]);
  return out;
}

std::string Table::to_html() const {
  validate(*this);
  auto cell = [&](const char* tag, std::size_t column, const std::string& text) {
    std::string open = std::string("<") + tag;
    if (align_of(*this, column) == Align::kRight) open += " class=\"num\"";
    return open + ">" + html_escape(text) + "</" + tag + ">";
  };
  std::string out = "<table>\n";
  if (!caption.empty()) out += "<caption>" + html_escape(caption) + "</caption>\n";
  out += "<thead><tr>";
  for (std::size_t c = 0; c < header.size(); ++c) out += cell("th", c, header[c]);
  out += "</tr></thead>\n<tbody>\n";
  for (const auto& row : rows) {
    out += "<tr>";
    for (std::size_t c = 0; c < row.size(); ++c) out += cell("td", c, row[c]);
    out += "</tr>\n";
  }
  out += "</tbody>\n</table>\n";
  return out;
}

std::string format_fixed(double value, int decimals) {
  if (std::isnan(value)) return "n/a";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  if (decimals < 0 || decimals > 17)
    throw Error("format_fixed: " + std::to_string(decimals) + " decimals (use 0..17)");
  char buffer[400];  // %.17f of 1.8e308 needs 327 characters
  const auto [end, ec] =
      std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::fixed, decimals);
  if (ec != std::errc()) throw Error("format_fixed: cannot format " + std::to_string(value));
  std::string text(buffer, end);
  // A small negative number rounded to zero reads as a sign error in a table.
  if (text.front() == '-' && text.find_first_not_of("-0.") == std::string::npos) text.erase(0, 1);
  return text;
}

std::string format_general(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%g", value);
  return buffer;
}

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace ppreid::sim::report
