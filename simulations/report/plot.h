#pragma once

// Line and point plots drawn with OpenCV (mAP per round, epsilon sweeps, the privacy-utility
// trade-off), written as PNG.

#include <cstddef>
#include <filesystem>
#include <opencv2/core.hpp>
#include <optional>
#include <string>
#include <vector>

namespace ppreid::sim::report {

struct Series {
  std::string name;
  std::vector<double> x, y;  // same size; a non-finite y is a gap (the line breaks there)
  // Empty, or one per point, drawn next to the point (e.g. the method at each trade-off point).
  std::vector<std::string> labels;
};

enum class PlotStyle { kLines, kPoints, kLinesAndPoints };

struct PlotOptions {
  std::string title, x_label, y_label;
  bool log_x = false;                  // decade ticks; every x must be > 0
  std::optional<double> y_min, y_max;  // fixed ends of the y axis, else 1/2/5 ticks around data
  int width = 720, height = 440;
  PlotStyle style = PlotStyle::kLinesAndPoints;
};

struct Tick {
  double value;
  std::string label;
};

// The layout render_plot draws. Exposed so callers and tests can map data to pixels.
//
// Linear axes: the tick step is the smallest 1, 2 or 5 x 10^k that splits the data range into at
// most 5 intervals, and the axis is widened to the enclosing multiples of the step (data [0, 0.73]
// -> ticks 0, 0.2, ..., 0.8), except at ends fixed by y_min / y_max. A zero-width range (one
// point, constant y) is padded by 10 % of the value (1 around 0) on both sides. A log x axis
// spans whole decades, labelled 1e1, 1e2, ... The legend sits right of the plot area, or below
// it, wrapping, when the names would take more than a third of the width (or the entries the
// height).
struct PlotGeometry {
  cv::Size canvas;
  // The plot area (its outline is the axes frame) and the ranges it shows, in data units.
  cv::Rect area;
  double x_lo = 0, x_hi = 1, y_lo = 0, y_hi = 1;
  bool log_x = false;
  std::vector<Tick> x_ticks, y_ticks;
  cv::Rect legend;                        // never overlaps `area`
  std::vector<cv::Point> legend_entries;  // top-left corner of each series' entry

  // x_lo maps to the area's first column, x_hi to its last; y_lo to its last row.
  cv::Point2d to_pixel(double x, double y) const;
};

PlotGeometry plot_geometry(const std::vector<Series>& series, const PlotOptions& options);

// CV_8UC3 BGR on white. Throws ppreid::Error for an empty series list, x/y (or labels) of
// different sizes, x <= 0 on a log axis, or a canvas too small for the axes (naming the series
// or the plot).
cv::Mat render_plot(const std::vector<Series>& series, const PlotOptions& options);

// The colour of the index-th series (BGR): the Okabe-Ito palette, which stays distinguishable
// with the common colour-vision deficiencies, cycling after 8.
cv::Scalar series_color(std::size_t index);

// PNG-encodes `image` and writes it atomically (temp file + rename). Throws ppreid::Error naming
// the file when the image is empty, cannot be encoded, or the file cannot be written.
void write_png(const std::filesystem::path& file, const cv::Mat& image);

}  // namespace ppreid::sim::report
