#include "simulations/report/plot.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <string_view>

#include "core/util/atomic_file.h"
#include "core/util/error.h"
#include "simulations/report/table.h"
#include "simulations/report/text.h"

namespace ppreid::sim::report {
namespace {

constexpr int kOuter = 10;  // blank border around everything
constexpr int kGap = 6;     // between a label and what it labels
constexpr int kTickLength = 5;
constexpr int kMinorTickLength = 3;
constexpr int kSwatch = 22;  // length of the line sample in the legend
constexpr int kMarkerRadius = 3;
constexpr int kLineThickness = 2;
constexpr int kShift = 4;  // fractional bits for OpenCV drawing, so AA lines are not snapped
constexpr int kMaxIntervals = 5;
constexpr int kMaxLogLabels = 10;
constexpr int kMinArea = 40;
const cv::Scalar kWhite(255, 255, 255);
const cv::Scalar kFrame(70, 70, 70);
const cv::Scalar kGrid(228, 228, 228);
const cv::Scalar kLegendBorder(200, 200, 200);

std::string plot_name(const PlotOptions& o) {
  return o.title.empty() ? std::string("plot") : "plot '" + o.title + "'";
}

void validate(const std::vector<Series>& series, const PlotOptions& o) {
  if (series.empty()) throw Error(plot_name(o) + ": no series to draw");
  for (const Series& s : series) {
    const std::string where = plot_name(o) + ", series '" + s.name + "': ";
    if (s.x.size() != s.y.size())
      throw Error(where + std::to_string(s.x.size()) + " x values but " +
                  std::to_string(s.y.size()) + " y values");
    if (!s.labels.empty() && s.labels.size() != s.x.size())
      throw Error(where + std::to_string(s.labels.size()) + " labels for " +
                  std::to_string(s.x.size()) + " points (give one per point or none)");
    if (o.log_x)
      for (double x : s.x)
        if (x <= 0)
          throw Error(where + "x = " + std::to_string(x) +
                      " cannot be shown on a log axis (every x must be > 0)");
  }
  for (const auto& end : {o.y_min, o.y_max})
    if (end && !std::isfinite(*end)) throw Error(plot_name(o) + ": y_min/y_max must be finite");
  if (o.y_min && o.y_max && !(*o.y_min < *o.y_max))
    throw Error(plot_name(o) + ": y_min (" + std::to_string(*o.y_min) + ") must be below y_max (" +
                std::to_string(*o.y_max) + ")");
}

// A tick step mantissa x 10^exponent. Tick values are computed from the integer parts so that
// 3 x 0.2 comes out as 0.6, not 0.6000000000000001.
struct Step {
  int mantissa;
  int exponent;
  double value() const { return at(1); }
  double at(long long k) const {
    const double scaled = static_cast<double>(k * mantissa);
    return exponent >= 0 ? scaled * std::pow(10.0, exponent) : scaled / std::pow(10.0, -exponent);
  }
};

Step nice_step(double raw) {
  const int e = static_cast<int>(std::floor(std::log10(raw)));
  const double f = raw / std::pow(10.0, e);
  for (int m : {1, 2, 5})
    if (f <= m * (1 + 1e-9)) return {m, e};
  return {1, e + 1};
}

std::string general_number(double v) {
  char buffer[32];
  const auto r = std::to_chars(buffer, buffer + sizeof buffer, v, std::chars_format::general, 3);
  return std::string(buffer, r.ptr);
}

std::string tick_label(double v, const Step& step) {
  if (std::abs(v) >= 1e6 || step.exponent < -5) return general_number(v);
  return format_fixed(v, std::max(0, -step.exponent));
}

double pad_for(double v) { return v != 0 ? std::abs(v) * 0.1 : 1.0; }

struct Axis {
  double lo, hi;
  std::vector<Tick> ticks;
};

Axis linear_axis(double data_lo, double data_hi, std::optional<double> fixed_lo,
                 std::optional<double> fixed_hi, const std::string& where) {
  if (data_lo > data_hi) data_lo = 0, data_hi = 1;  // nothing finite to show
  double lo = fixed_lo.value_or(data_lo), hi = fixed_hi.value_or(data_hi);
  if (hi <= lo) {
    if (fixed_lo && !fixed_hi)
      hi = lo + 2 * pad_for(lo);
    else if (fixed_hi && !fixed_lo)
      lo = hi - 2 * pad_for(hi);
    else {
      const double pad = pad_for(lo);
      lo -= pad;
      hi += pad;
    }
  }
  if (!std::isfinite(hi - lo)) throw Error(where + ": the data range is too large to plot");
  const Step step = nice_step((hi - lo) / kMaxIntervals);
  const double s = step.value();
  constexpr double kEps = 1e-9;
  long long first = static_cast<long long>(std::ceil(lo / s - kEps));
  long long last = static_cast<long long>(std::floor(hi / s + kEps));
  if (!fixed_lo) {
    first = static_cast<long long>(std::floor(lo / s + kEps));
    lo = step.at(first);
  }
  if (!fixed_hi) {
    last = static_cast<long long>(std::ceil(hi / s - kEps));
    hi = step.at(last);
  }
  Axis axis{lo, hi, {}};
  for (long long k = first; k <= last; ++k)
    axis.ticks.push_back({step.at(k), tick_label(step.at(k), step)});
  return axis;
}

Axis log_axis(double data_lo, double data_hi) {
  if (data_lo > data_hi) data_lo = 1, data_hi = 10;
  int a = static_cast<int>(std::floor(std::log10(data_lo) + 1e-12));
  int b = static_cast<int>(std::ceil(std::log10(data_hi) - 1e-12));
  if (b == a) --a, ++b;  // one exact decade: centre it
  const int every = (b - a + kMaxLogLabels - 1) / kMaxLogLabels;
  Axis axis{std::pow(10.0, a), std::pow(10.0, b), {}};
  for (int k = a; k <= b; ++k)
    axis.ticks.push_back({std::pow(10.0, k), (k - a) % every == 0 ? "1e" + std::to_string(k) : ""});
  return axis;
}

int widest(const std::vector<Tick>& ticks) {
  int w = 0;
  for (const Tick& t : ticks) w = std::max(w, text_size(t.label).width);
  return w;
}

int legend_entry_height() { return line_height() + 4; }

struct Legend {
  cv::Size size;
  std::vector<cv::Point> entries;  // top-left of each entry, relative to the box
};

int legend_entry_width(const Series& s) { return kSwatch + kGap + text_size(s.name).width; }

Legend stacked_legend(const std::vector<Series>& series) {
  Legend legend;
  int widest_entry = 0;
  for (std::size_t i = 0; i < series.size(); ++i) {
    legend.entries.push_back({kGap, kGap + static_cast<int>(i) * legend_entry_height()});
    widest_entry = std::max(widest_entry, legend_entry_width(series[i]));
  }
  legend.size = {kGap + widest_entry + kGap,
                 2 * kGap + static_cast<int>(series.size()) * legend_entry_height() - 4};
  return legend;
}

Legend flowed_legend(const std::vector<Series>& series, int max_width) {
  Legend legend;
  int x = kGap, y = kGap, right = 0;
  for (const Series& s : series) {
    const int w = legend_entry_width(s);
    if (x > kGap && x + w + kGap > max_width) x = kGap, y += legend_entry_height();
    legend.entries.push_back({x, y});
    right = std::max(right, x + w);
    x += w + 3 * kGap;
  }
  legend.size = {right + kGap, y + legend_entry_height() - 4 + kGap};
  return legend;
}

cv::Point round_point(cv::Point2d p) { return {cvRound(p.x), cvRound(p.y)}; }

// Sub-pixel coordinates relative to `origin`, clamped so far-away points cannot overflow int.
cv::Point shifted(cv::Point2d p, cv::Point origin) {
  constexpr double kFar = 1e6;
  const double x = std::clamp(p.x - origin.x, -kFar, kFar);
  const double y = std::clamp(p.y - origin.y, -kFar, kFar);
  return {cvRound(x * (1 << kShift)), cvRound(y * (1 << kShift))};
}

void draw_marker(cv::Mat& image, cv::Point shifted_centre, int radius, const cv::Scalar& color) {
  cv::circle(image, shifted_centre, radius << kShift, color, cv::FILLED, cv::LINE_AA, kShift);
}

bool finite_point(const Series& s, std::size_t j) {
  return std::isfinite(s.x[j]) && std::isfinite(s.y[j]);
}

void draw_axes(cv::Mat& image, const PlotGeometry& g, const PlotOptions& o) {
  const cv::Rect& a = g.area;
  const int bottom = a.y + a.height - 1;
  for (const Tick& t : g.y_ticks) {
    const int y = round_point(g.to_pixel(g.x_lo, t.value)).y;
    cv::line(image, {a.x, y}, {a.x + a.width - 1, y}, kGrid, 1);
    cv::line(image, {a.x - kTickLength, y}, {a.x - 1, y}, kFrame, 1);
    const cv::Size size = text_size(t.label);
    draw_text(image, t.label, {a.x - kTickLength - kGap - size.width, y - size.height / 2});
  }
  for (const Tick& t : g.x_ticks) {
    const int x = round_point(g.to_pixel(t.value, g.y_lo)).x;
    cv::line(image, {x, a.y}, {x, bottom}, kGrid, 1);
    cv::line(image, {x, bottom + 1}, {x, bottom + kTickLength}, kFrame, 1);
    draw_text(image, t.label, {x - text_size(t.label).width / 2, bottom + kTickLength + 3});
  }
  if (g.log_x)
    for (std::size_t i = 0; i + 1 < g.x_ticks.size(); ++i)
      for (int m = 2; m <= 9; ++m) {
        const int x = round_point(g.to_pixel(g.x_ticks[i].value * m, g.y_lo)).x;
        cv::line(image, {x, bottom + 1}, {x, bottom + kMinorTickLength}, kFrame, 1);
      }
  cv::rectangle(image, a.tl(), a.br() - cv::Point(1, 1), kFrame, 1);

  const int lh = line_height();
  if (!o.title.empty()) {
    const int w = text_size(o.title, kTitleScale).width;
    draw_text(image, o.title, {std::max(kOuter, (g.canvas.width - w) / 2), kOuter}, kTitleScale);
  }
  if (!o.x_label.empty()) {
    const int w = text_size(o.x_label).width;
    draw_text(image, o.x_label, {a.x + (a.width - w) / 2, bottom + kTickLength + kGap + lh + kGap});
  }
  if (!o.y_label.empty()) {
    const int w = text_size(o.y_label).width;
    draw_text_vertical(image, o.y_label, {kOuter, a.y + (a.height - w) / 2});
  }
}

void draw_lines(cv::Mat& view, cv::Point origin, const PlotGeometry& g, const Series& s,
                const cv::Scalar& color) {
  for (std::size_t j = 0; j + 1 < s.x.size(); ++j)
    if (finite_point(s, j) && finite_point(s, j + 1))
      cv::line(view, shifted(g.to_pixel(s.x[j], s.y[j]), origin),
               shifted(g.to_pixel(s.x[j + 1], s.y[j + 1]), origin), color, kLineThickness,
               cv::LINE_AA, kShift);
}

void draw_markers(cv::Mat& view, cv::Point origin, const PlotGeometry& g, const Series& s,
                  PlotStyle style, const cv::Scalar& color) {
  const std::size_t n = s.x.size();
  for (std::size_t j = 0; j < n; ++j) {
    if (!finite_point(s, j)) continue;
    const bool isolated =
        (j == 0 || !finite_point(s, j - 1)) && (j + 1 == n || !finite_point(s, j + 1));
    // A point between two gaps has no line; without a dot it would vanish in kLines style.
    if (style != PlotStyle::kLines)
      draw_marker(view, shifted(g.to_pixel(s.x[j], s.y[j]), origin), kMarkerRadius, color);
    else if (isolated)
      draw_marker(view, shifted(g.to_pixel(s.x[j], s.y[j]), origin), kLineThickness, color);
  }
}

void draw_point_labels(cv::Mat& image, const PlotGeometry& g, const Series& s) {
  const cv::Rect& a = g.area;
  for (std::size_t j = 0; j < s.labels.size(); ++j) {
    if (!finite_point(s, j) || s.labels[j].empty()) continue;
    const cv::Point p = round_point(g.to_pixel(s.x[j], s.y[j]));
    const cv::Size size = text_size(s.labels[j]);
    constexpr int kOffset = kMarkerRadius + 3;
    // Up and to the right of the point, flipped where that would leave the plot area.
    cv::Point at(p.x + kOffset, p.y - kOffset - size.height + 3);
    if (at.x + size.width > a.x + a.width) at.x = p.x - kOffset - size.width;
    if (at.y < a.y) at.y = p.y + kOffset - 3;
    draw_text(image, s.labels[j], at);
  }
}

void draw_legend(cv::Mat& image, const PlotGeometry& g, const std::vector<Series>& series,
                 PlotStyle style) {
  const cv::Rect& box = g.legend;
  cv::rectangle(image, box.tl(), box.br() - cv::Point(1, 1), kLegendBorder, 1);
  const int lh = line_height();
  for (std::size_t i = 0; i < series.size(); ++i) {
    const cv::Point at = g.legend_entries[i];
    const cv::Point2d left(at.x, at.y + lh / 2.0), right(left.x + kSwatch, left.y);
    const cv::Scalar color = series_color(i);
    if (style != PlotStyle::kPoints)
      cv::line(image, shifted(left, {}), shifted(right, {}), color, kLineThickness, cv::LINE_AA,
               kShift);
    if (style != PlotStyle::kLines)
      draw_marker(image, shifted((left + right) / 2, {}), kMarkerRadius, color);
    draw_text(image, series[i].name, {at.x + kSwatch + kGap, at.y});
  }
}

}  // namespace

cv::Point2d PlotGeometry::to_pixel(double x, double y) const {
  const double t = log_x ? std::log10(x) : x;
  const double lo = log_x ? std::log10(x_lo) : x_lo;
  const double hi = log_x ? std::log10(x_hi) : x_hi;
  return {area.x + (t - lo) / (hi - lo) * (area.width - 1),
          area.y + (y_hi - y) / (y_hi - y_lo) * (area.height - 1)};
}

PlotGeometry plot_geometry(const std::vector<Series>& series, const PlotOptions& o) {
  validate(series, o);
  constexpr double kInf = std::numeric_limits<double>::infinity();
  double x_lo = kInf, x_hi = -kInf, y_lo = kInf, y_hi = -kInf;
  for (const Series& s : series)
    for (std::size_t j = 0; j < s.x.size(); ++j) {
      if (!std::isfinite(s.x[j])) continue;
      x_lo = std::min(x_lo, s.x[j]);
      x_hi = std::max(x_hi, s.x[j]);
      if (!std::isfinite(s.y[j])) continue;
      y_lo = std::min(y_lo, s.y[j]);
      y_hi = std::max(y_hi, s.y[j]);
    }
  const Axis x = o.log_x ? log_axis(x_lo, x_hi) : linear_axis(x_lo, x_hi, {}, {}, plot_name(o));
  const Axis y = linear_axis(y_lo, y_hi, o.y_min, o.y_max, plot_name(o));

  PlotGeometry g;
  g.canvas = {o.width, o.height};
  g.log_x = o.log_x;
  g.x_lo = x.lo, g.x_hi = x.hi, g.y_lo = y.lo, g.y_hi = y.hi;
  g.x_ticks = x.ticks;
  g.y_ticks = y.ticks;

  const int lh = line_height();
  const int top = kOuter + (o.title.empty() ? lh / 2 : line_height(kTitleScale) + kGap);
  const int left =
      kOuter + (o.y_label.empty() ? 0 : lh + kGap) + widest(y.ticks) + kGap + kTickLength;
  int bottom = kTickLength + 3 + lh + (o.x_label.empty() ? 0 : kGap + lh) + kOuter;
  // The last x tick label is centred on the frame's right edge; half of it sticks out.
  int right = kOuter + (x.ticks.empty() ? 0 : text_size(x.ticks.back().label).width / 2);

  // One entry per line beside the area; below it, entries flow left to right and wrap.
  const int below_width = std::max(kMinArea, o.width - left - kOuter);
  Legend legend = stacked_legend(series);
  const bool beside =
      legend.size.width <= o.width / 3 && legend.size.height <= o.height - top - kOuter;
  if (beside) {
    right = std::max(right, kOuter + legend.size.width + 2 * kGap);
  } else {
    legend = flowed_legend(series, below_width);
    bottom += kGap + legend.size.height;
  }

  g.area = cv::Rect(left, top, o.width - left - right, o.height - top - bottom);
  if (g.area.width < kMinArea || g.area.height < kMinArea)
    throw Error(plot_name(o) + ": " + std::to_string(o.width) + "x" + std::to_string(o.height) +
                " px leave no room for the data; make the plot larger or the names shorter");
  g.legend = beside ? cv::Rect({o.width - kOuter - legend.size.width, top}, legend.size)
                    : cv::Rect({left, o.height - kOuter - legend.size.height}, legend.size);
  for (const cv::Point& offset : legend.entries) g.legend_entries.push_back(g.legend.tl() + offset);
  return g;
}

cv::Mat render_plot(const std::vector<Series>& series, const PlotOptions& options) {
  const PlotGeometry g = plot_geometry(series, options);
  cv::Mat image(g.canvas, CV_8UC3, kWhite);
  draw_axes(image, g, options);
  // Slightly larger than the area: lines leaving a fixed y range are clipped by OpenCV, while
  // markers on the frame stay whole.
  constexpr int kBleed = kMarkerRadius + 2;
  const cv::Rect view = cv::Rect(g.area.x - kBleed, g.area.y - kBleed, g.area.width + 2 * kBleed,
                                 g.area.height + 2 * kBleed) &
                        cv::Rect({0, 0}, g.canvas);
  cv::Mat roi = image(view);
  // All lines first, so no line hides another series' markers.
  if (options.style != PlotStyle::kPoints)
    for (std::size_t i = 0; i < series.size(); ++i)
      draw_lines(roi, view.tl(), g, series[i], series_color(i));
  for (std::size_t i = 0; i < series.size(); ++i)
    draw_markers(roi, view.tl(), g, series[i], options.style, series_color(i));
  for (const Series& s : series) draw_point_labels(image, g, s);
  draw_legend(image, g, series, options.style);
  return image;
}

cv::Scalar series_color(std::size_t index) {
  // Okabe & Ito (2008), BGR; yellow last because it is faint on white.
  static const std::array<cv::Scalar, 8> kPalette = {
      cv::Scalar(178, 114, 0),    // blue
      cv::Scalar(0, 94, 213),     // vermillion
      cv::Scalar(115, 158, 0),    // bluish green
      cv::Scalar(0, 159, 230),    // orange
      cv::Scalar(167, 121, 204),  // reddish purple
      cv::Scalar(233, 180, 86),   // sky blue
      cv::Scalar(0, 0, 0),        // black
      cv::Scalar(66, 228, 240),   // yellow
  };
  return kPalette[index % kPalette.size()];
}

void write_png(const std::filesystem::path& file, const cv::Mat& image) {
  const std::string name = "'" + file.string() + "'";
  if (image.empty()) throw Error("cannot write " + name + ": the image is empty");
  std::vector<uchar> bytes;
  try {
    if (!cv::imencode(".png", image, bytes, {cv::IMWRITE_PNG_COMPRESSION, 6}))
      throw Error("cannot encode " + name + " as PNG");
  } catch (const cv::Exception& e) {
    throw Error("cannot encode " + name + " as PNG (" + std::to_string(image.channels()) +
                " channels, depth " + std::to_string(image.depth()) + "): " + e.what());
  }
  if (file.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(file.parent_path(), ec);
    if (ec) throw Error("cannot create the directory of " + name + ": " + ec.message());
  }
  util::write_file_atomic(
      file, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

}  // namespace ppreid::sim::report
