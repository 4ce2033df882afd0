#pragma once

// The report of a simulation: report.html, one self-contained page (inline CSS, PNGs embedded
// as data: URIs, no scripts, no external URLs), and summary.md with the same sections.

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "simulations/report/table.h"

namespace ppreid::sim::report {

struct Figure {
  std::filesystem::path png;
  std::string caption;
};

// Shown in this order: paragraphs (plain text, escaped in HTML), tables, figures.
struct ReportSection {
  std::string title;
  std::vector<std::string> paragraphs;
  std::vector<Table> tables;
  std::vector<Figure> figures;
};

// Standard base64 (RFC 4648, with '=' padding).
std::string base64_encode(std::string_view bytes);

// Throws ppreid::Error naming the figure when a PNG is missing or is not a PNG.
std::string render_html(const std::string& title, const std::vector<ReportSection>& sections,
                        const std::string& footer = "");

// render_html written atomically to `file`.
void write_html_report(const std::filesystem::path& file, const std::string& title,
                       const std::vector<ReportSection>& sections, const std::string& footer = "");

// Markdown with the same content; figures become links relative to `base_dir` (the directory
// the markdown file will be written to), e.g. ![mAP per round](plots/map_per_round.png).
std::string render_markdown(const std::string& title, const std::vector<ReportSection>& sections,
                            const std::filesystem::path& base_dir, const std::string& footer = "");

}  // namespace ppreid::sim::report
