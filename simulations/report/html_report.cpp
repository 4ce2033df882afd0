#include "simulations/report/html_report.h"

#include <openssl/evp.h>

#include <algorithm>

#include "core/util/atomic_file.h"
#include "core/util/error.h"

namespace ppreid::sim::report {
namespace fs = std::filesystem;
namespace {

// Light, readable, print-friendly; .num right-aligns numeric table cells (Table::to_html).
constexpr std::string_view kStyle = R"(
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
  color:#222;background:#fff;max-width:1100px;margin:2em auto;padding:0 1.2em;line-height:1.5}
h1{font-size:1.7em;border-bottom:2px solid #ddd;padding-bottom:.3em}
h2{font-size:1.3em;margin-top:2em;border-bottom:1px solid #eee;padding-bottom:.2em}
nav ol{padding-left:1.4em}
a{color:#0b5cad}
table{border-collapse:collapse;margin:1em 0;font-size:.92em}
caption{caption-side:top;text-align:left;font-weight:600;padding-bottom:.4em}
th,td{padding:.3em .7em;border-bottom:1px solid #e3e3e3;text-align:left;vertical-align:top}
thead th{border-bottom:2px solid #bbb;background:#f6f6f6}
tbody tr:nth-child(even){background:#fafafa}
th.num,td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1.2em 0}
figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#555;font-size:.9em;margin-top:.3em}
footer{margin-top:3em;color:#777;font-size:.85em;border-top:1px solid #eee;padding-top:.6em}
)";

std::string section_id(std::size_t index) { return "section-" + std::to_string(index + 1); }

std::string png_bytes(const Figure& figure, const ReportSection& section) {
  const std::string where =
      "report figure '" + figure.png.string() + "' (section '" + section.title + "')";
  if (!fs::is_regular_file(figure.png))
    throw Error(where + " does not exist; write the PNG before the report");
  std::string bytes = util::read_file(figure.png);
  constexpr std::string_view kSignature("\x89PNG\r\n\x1a\n", 8);
  if (!bytes.starts_with(kSignature)) throw Error(where + " is not a PNG file");
  return bytes;
}

std::string one_line(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  std::replace(text.begin(), text.end(), '\r', ' ');
  return text;
}

std::string markdown_link_text(const std::string& text) {
  std::string out;
  for (char c : one_line(text)) {
    if (c == '[' || c == ']' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

std::string markdown_target(const fs::path& png, const fs::path& base_dir) {
  const fs::path file = fs::absolute(png).lexically_normal();
  fs::path relative = file.lexically_relative(fs::absolute(base_dir).lexically_normal());
  const std::string target = (relative.empty() ? file : relative).generic_string();
  // CommonMark's <...> form allows spaces and parentheses in a link destination.
  const bool plain = target.find_first_of(" ()<>") == std::string::npos;
  return plain ? target : "<" + target + ">";
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  // EVP_EncodeBlock takes an int length; chunks of a multiple of 3 bytes encode independently.
  constexpr std::size_t kChunk = 3 * 65536;
  std::string out((bytes.size() + 2) / 3 * 4 + 1, '\0');  // +1: EVP_EncodeBlock writes a NUL
  std::size_t written = 0;
  for (std::size_t pos = 0; pos < bytes.size(); pos += kChunk) {
    const std::size_t n = std::min(kChunk, bytes.size() - pos);
    written += static_cast<std::size_t>(EVP_EncodeBlock(
        reinterpret_cast<unsigned char*>(out.data() + written),
        reinterpret_cast<const unsigned char*>(bytes.data() + pos), static_cast<int>(n)));
  }
  out.resize(written);
  return out;
}

std::string render_html(const std::string& title, const std::vector<ReportSection>& sections,
                        const std::string& footer) {
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  out += "<title>" + html_escape(title) + "</title>\n<style>" + std::string(kStyle) +
         "</style>\n</head>\n<body>\n";
  out += "<h1>" + html_escape(title) + "</h1>\n";
  if (!sections.empty()) {
    out += "<nav>\n<h2>Contents</h2>\n<ol>\n";
    for (std::size_t i = 0; i < sections.size(); ++i)
      out += "<li><a href=\"#" + section_id(i) + "\">" + html_escape(sections[i].title) +
             "</a></li>\n";
    out += "</ol>\n</nav>\n";
  }
  for (std::size_t i = 0; i < sections.size(); ++i) {
    const ReportSection& s = sections[i];
    out += "<section id=\"" + section_id(i) + "\">\n<h2>" + html_escape(s.title) + "</h2>\n";
    for (const auto& p : s.paragraphs) out += "<p>" + html_escape(p) + "</p>\n";
    for (const auto& t : s.tables) out += t.to_html();
    for (const auto& f : s.figures) {
      out += "<figure>\n<img src=\"data:image/png;base64," + base64_encode(png_bytes(f, s)) +
             "\" alt=\"" + html_escape(f.caption) + "\">\n";
      if (!f.caption.empty()) out += "<figcaption>" + html_escape(f.caption) + "</figcaption>\n";
      out += "</figure>\n";
    }
    out += "</section>\n";
  }
  if (!footer.empty()) out += "<footer>" + html_escape(footer) + "</footer>\n";
  out += "</body>\n</html>\n";
  return out;
}

void write_html_report(const fs::path& file, const std::string& title,
                       const std::vector<ReportSection>& sections, const std::string& footer) {
  util::write_file_atomic(file, render_html(title, sections, footer));
}

std::string render_markdown(const std::string& title, const std::vector<ReportSection>& sections,
                            const fs::path& base_dir, const std::string& footer) {
  std::string out = "# " + one_line(title) + "\n";
  for (const ReportSection& s : sections) {
    out += "\n## " + one_line(s.title) + "\n";
    for (const auto& p : s.paragraphs) out += "\n" + p + "\n";
    for (const auto& t : s.tables) out += "\n" + t.to_markdown();
    for (const auto& f : s.figures)
      out +=
          "\n![" + markdown_link_text(f.caption) + "](" + markdown_target(f.png, base_dir) + ")\n";
  }
  if (!footer.empty()) out += "\n---\n\n" + footer + "\n";
  return out;
}

}  // namespace ppreid::sim::report
