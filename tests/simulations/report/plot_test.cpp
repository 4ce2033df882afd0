#include "simulations/report/plot.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "tests/simulations/report/pixels.h"
#include "tests/support/errors.h"
#include "tests/support/temp_dir.h"

namespace ppreid::sim::report {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using testing::bgr;
using testing::count_color;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const double kNaN = std::nan("");

std::vector<double> values(const std::vector<Tick>& ticks) {
  std::vector<double> v;
  for (const Tick& t : ticks) v.push_back(t.value);
  return v;
}

std::vector<std::string> labels(const std::vector<Tick>& ticks) {
  std::vector<std::string> v;
  for (const Tick& t : ticks) v.push_back(t.label);
  return v;
}

cv::Vec3b pixel(const cv::Mat& image, cv::Point2d p) {
  return image.at<cv::Vec3b>(cvRound(p.y), cvRound(p.x));
}

TEST(PlotTest, RenderingIsDeterministicBgrOnWhite) {
  const std::vector<Series> s = {{"a", {1, 2, 3}, {0.2, 0.5, 0.4}, {}},
                                 {"b", {1, 2, 3}, {0.1, kNaN, 0.7}, {}}};
  PlotOptions o;
  o.title = "mAP per round";
  o.x_label = "round";
  o.y_label = "mAP";
  const cv::Mat a = render_plot(s, o), b = render_plot(s, o);
  EXPECT_EQ(a.type(), CV_8UC3);
  EXPECT_EQ(a.size(), cv::Size(720, 440));
  EXPECT_TRUE(testing::identical(a, b));
  EXPECT_EQ(a.at<cv::Vec3b>(0, 0), cv::Vec3b(255, 255, 255));
}

TEST(PlotTest, NiceTicksUseOneTwoFiveStepsAndWidenTheAxisToThem) {
  const PlotGeometry g = plot_geometry({{"a", {1, 10}, {0, 0.73}, {}}}, {});
  // y: 0.73 / 5 intervals = 0.146 -> step 0.2; x: 9 / 5 = 1.8 -> step 2, widened down to 0.
  EXPECT_THAT(values(g.y_ticks), ElementsAre(0, 0.2, 0.4, 0.6, 0.8));
  EXPECT_THAT(labels(g.y_ticks), ElementsAre("0.0", "0.2", "0.4", "0.6", "0.8"));
  EXPECT_EQ(g.y_lo, 0);
  EXPECT_EQ(g.y_hi, 0.8);
  EXPECT_THAT(labels(g.x_ticks), ElementsAre("0", "2", "4", "6", "8", "10"));
  EXPECT_EQ(g.x_lo, 0);
  EXPECT_EQ(g.x_hi, 10);
}

TEST(PlotTest, NegativeRangesAndFixedEnds) {
  // -37..12: 49 / 5 = 9.8 -> step 10, widened to -40..20.
  const PlotGeometry g = plot_geometry({{"a", {0, 1}, {-37, 12}, {}}}, {});
  EXPECT_THAT(labels(g.y_ticks), ElementsAre("-40", "-30", "-20", "-10", "0", "10", "20"));
  PlotOptions fixed;
  fixed.y_min = 0;
  fixed.y_max = 1;
  const PlotGeometry f = plot_geometry({{"a", {0, 1}, {0.31, 0.42}, {}}}, fixed);
  EXPECT_EQ(f.y_lo, 0);
  EXPECT_EQ(f.y_hi, 1);
  EXPECT_THAT(values(f.y_ticks), ElementsAre(0, 0.2, 0.4, 0.6, 0.8, 1.0));
}

TEST(PlotTest, LogXHasDecadeTicks) {
  PlotOptions o;
  o.log_x = true;
  const PlotGeometry g = plot_geometry({{"eps", {10, 300, 1e5}, {1, 2, 3}, {}}}, o);
  EXPECT_THAT(values(g.x_ticks), ElementsAre(10, 100, 1e3, 1e4, 1e5));
  EXPECT_THAT(labels(g.x_ticks), ElementsAre("1e1", "1e2", "1e3", "1e4", "1e5"));
  // 1e3 is two of four decades in: the middle of the area.
  EXPECT_DOUBLE_EQ(g.to_pixel(1e3, 2).x, g.area.x + (g.area.width - 1) / 2.0);
}

TEST(PlotTest, ToPixelMapsTheShownRangeOntoTheAreaCorners) {
  const PlotGeometry g = plot_geometry({{"a", {0, 4}, {0, 1}, {}}}, {});
  EXPECT_EQ(g.to_pixel(g.x_lo, g.y_hi), cv::Point2d(g.area.x, g.area.y));
  EXPECT_EQ(g.to_pixel(g.x_hi, g.y_lo),
            cv::Point2d(g.area.x + g.area.width - 1, g.area.y + g.area.height - 1));
}

TEST(PlotTest, EachPointIsDrawnInItsSeriesColourAtItsDataPosition) {
  const std::vector<Series> s = {{"a", {1, 2, 3, 4}, {0.1, 0.5, 0.3, 0.9}, {}},
                                 {"b", {1, 2, 3, 4}, {0.8, 0.2, 0.7, 0.1}, {}}};
  for (PlotStyle style : {PlotStyle::kPoints, PlotStyle::kLinesAndPoints}) {
    PlotOptions o;
    o.style = style;
    const PlotGeometry g = plot_geometry(s, o);
    const cv::Mat image = render_plot(s, o);
    for (std::size_t i = 0; i < s.size(); ++i)
      for (std::size_t j = 0; j < s[i].x.size(); ++j)
        EXPECT_EQ(pixel(image, g.to_pixel(s[i].x[j], s[i].y[j])), bgr(series_color(i)))
            << "series " << i << " point " << j;
  }
  EXPECT_NE(series_color(0), series_color(1));
  EXPECT_EQ(series_color(8), series_color(0));  // the palette cycles
}

TEST(PlotTest, SinglePointAndConstantSeriesGetAPaddedRange) {
  const std::vector<Series> s = {{"one", {3}, {5}, {}}};
  const PlotGeometry g = plot_geometry(s, {});
  // 5 +- 10 % = [4.5, 5.5] -> step 0.2 -> [4.4, 5.6]; x likewise [2.6, 3.4].
  EXPECT_DOUBLE_EQ(g.y_lo, 4.4);
  EXPECT_DOUBLE_EQ(g.y_hi, 5.6);
  EXPECT_DOUBLE_EQ(g.x_lo, 2.6);
  EXPECT_DOUBLE_EQ(g.x_hi, 3.4);
  const cv::Mat image = render_plot(s, {});
  EXPECT_EQ(pixel(image, g.to_pixel(3, 5)), bgr(series_color(0)));
}

TEST(PlotTest, ANonFiniteYBreaksTheLine) {
  // 0.7 is not a tick, so no grid line runs along the segment.
  const Series whole{"a", {0, 1, 2, 3}, {0, 0.7, 0.7, 0.7}, {}};
  Series gap = whole;
  gap.y[2] = kNaN;
  PlotOptions o;
  o.style = PlotStyle::kLines;
  const PlotGeometry g = plot_geometry({gap}, o);
  const cv::Mat with_gap = render_plot({gap}, o);
  const cv::Mat without = render_plot({whole}, o);
  auto coloured = [](cv::Vec3b p) { return !(p[0] == p[1] && p[1] == p[2]); };
  for (double x : {1.3, 1.5, 1.7, 2.3, 2.5, 2.7}) {
    EXPECT_FALSE(coloured(pixel(with_gap, g.to_pixel(x, 0.7)))) << x;
    EXPECT_TRUE(coloured(pixel(without, g.to_pixel(x, 0.7)))) << x;
  }
}

TEST(PlotTest, AnAllNaNSeriesDrawsNothingButKeepsItsLegendEntry) {
  const std::vector<Series> s = {{"real", {1, 2}, {1, 2}, {}}, {"ghost", {1, 2}, {kNaN, kNaN}, {}}};
  const PlotGeometry g = plot_geometry(s, {});
  const cv::Mat image = render_plot(s, {});
  EXPECT_EQ(count_color(image, series_color(1), g.area), 0);
  EXPECT_GT(count_color(image, series_color(1), g.legend), 0);
  EXPECT_GT(count_color(image, series_color(0), g.legend), 0);
}

TEST(PlotTest, TheLegendStaysOutsideThePlotArea) {
  const PlotGeometry beside = plot_geometry({{"FedAvg", {1, 2}, {1, 2}, {}}}, {});
  EXPECT_TRUE((beside.legend & beside.area).empty());
  EXPECT_GT(beside.legend.x, beside.area.x + beside.area.width);
  EXPECT_TRUE((beside.legend & cv::Rect({0, 0}, beside.canvas)) == beside.legend);

  const std::string long_name(60, 'n');
  const PlotGeometry below = plot_geometry({{long_name, {1, 2}, {1, 2}, {}}}, {});
  EXPECT_TRUE((below.legend & below.area).empty());
  EXPECT_GT(below.legend.y, below.area.y + below.area.height);

  // Too many entries for the height: below the area, wrapped into rows inside the canvas.
  std::vector<Series> many;
  for (int i = 0; i < 16; ++i) many.push_back({"site-" + std::to_string(i), {1, 2}, {1, 2}, {}});
  PlotOptions low;
  low.height = 300;
  const PlotGeometry wrapped = plot_geometry(many, low);
  EXPECT_TRUE((wrapped.legend & wrapped.area).empty());
  EXPECT_TRUE((wrapped.legend & cv::Rect({0, 0}, wrapped.canvas)) == wrapped.legend);
  ASSERT_EQ(wrapped.legend_entries.size(), 16u);
  EXPECT_EQ(wrapped.legend_entries[0].y, wrapped.legend_entries[1].y);
  EXPECT_GT(wrapped.legend_entries[15].y, wrapped.legend_entries[0].y);
  const cv::Mat image = render_plot(many, low);
  for (int i = 0; i < 7; ++i)  // the palette's first 7 colours are distinct
    EXPECT_GT(count_color(image, series_color(i), wrapped.legend), 0) << i;
}

TEST(PlotTest, YValuesOutsideAFixedRangeAreClipped) {
  PlotOptions o;
  o.y_min = 0;
  o.y_max = 1;
  const std::vector<Series> s = {{"a", {0, 1, 2}, {0.5, 5, 0.5}, {}}};
  const PlotGeometry g = plot_geometry(s, o);
  const cv::Mat image = render_plot(s, o);
  const int margin = 10;
  EXPECT_EQ(count_color(image, series_color(0), cv::Rect(0, 0, image.cols, g.area.y - margin)), 0);
  EXPECT_GT(count_color(image, series_color(0), g.area), 0);
}

TEST(PlotTest, PointLabelsAreDrawnNextToTheirPoints) {
  Series plain{"methods", {0.2, 0.8}, {0.3, 0.6}, {}};
  Series labelled = plain;
  labelled.labels = {"pis", "dp"};
  const PlotGeometry g = plot_geometry({plain}, {});
  cv::Mat diff;
  cv::absdiff(render_plot({labelled}, {}), render_plot({plain}, {}), diff);
  cv::cvtColor(diff, diff, cv::COLOR_BGR2GRAY);
  std::vector<cv::Point> changed;
  cv::findNonZero(diff, changed);
  ASSERT_FALSE(changed.empty());
  for (const cv::Point& p : changed) {
    const double d = std::min(cv::norm(cv::Point2d(p) - g.to_pixel(0.2, 0.3)),
                              cv::norm(cv::Point2d(p) - g.to_pixel(0.8, 0.6)));
    EXPECT_LT(d, 50) << p;
  }
}

TEST(PlotTest, BadInputIsAnErrorNamingTheSeries) {
  using testing::error_of;
  EXPECT_THAT(error_of([] { render_plot({}, {}); }), HasSubstr("no series"));
  EXPECT_THAT(error_of([] {
                render_plot({{"acc", {1, 2, 3}, {1, 2}, {}}}, {});
              }),
              AllOf(HasSubstr("'acc'"), HasSubstr("3 x values but 2 y values")));
  EXPECT_THAT(error_of([] {
                render_plot({{"tags", {1, 2}, {1, 2}, {"x"}}}, {});
              }),
              AllOf(HasSubstr("'tags'"), HasSubstr("labels")));
  PlotOptions log;
  log.log_x = true;
  EXPECT_THAT(error_of([&] {
                render_plot({{"ok", {1}, {1}, {}}, {"eps", {1, 0}, {1, 2}, {}}}, log);
              }),
              AllOf(HasSubstr("'eps'"), HasSubstr("log axis")));
  PlotOptions inverted;
  inverted.y_min = 1;
  inverted.y_max = 0;
  EXPECT_THAT(error_of([&] { render_plot({{"a", {1}, {1}, {}}}, inverted); }), HasSubstr("y_min"));
  PlotOptions tiny;
  tiny.width = 60;
  tiny.height = 40;
  EXPECT_THAT(error_of([&] { render_plot({{"a", {1}, {1}, {}}}, tiny); }), HasSubstr("no room"));
}

TEST(PlotWritePngTest, TheFileDecodesToTheSamePixelsAndNoTempFileIsLeft) {
  ppreid::testing::TempDir dir;
  const cv::Mat image = render_plot({{"a", {1, 2, 3}, {3, 1, 2}, {}}}, {});
  const fs::path file = dir / "plots" / "a.png";  // the plots/ directory is created
  write_png(file, image);
  EXPECT_TRUE(testing::identical(cv::imread(file.string(), cv::IMREAD_UNCHANGED), image));
  std::vector<fs::path> entries(fs::directory_iterator(dir.path() / "plots"), {});
  EXPECT_THAT(entries, ElementsAre(file));
}

TEST(PlotWritePngTest, FailuresNameTheFile) {
  ppreid::testing::TempDir dir;
  EXPECT_THAT(testing::error_of([&] { write_png(dir / "empty.png", cv::Mat()); }),
              AllOf(HasSubstr("empty.png"), HasSubstr("empty")));
  write_png(dir / "blocker", cv::Mat(2, 2, CV_8UC3, cv::Scalar::all(9)));
  EXPECT_THAT(testing::error_of([&] {
                write_png(dir / "blocker" / "x.png", cv::Mat(2, 2, CV_8UC3, cv::Scalar::all(9)));
              }),
              HasSubstr("x.png"));
}

}  // namespace
}  // namespace ppreid::sim::report
