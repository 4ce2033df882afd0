#include "simulations/report/image_grid.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>

#include "tests/simulations/report/pixels.h"
#include "tests/support/errors.h"

namespace ppreid::sim::report {
namespace {

using ::testing::AllOf;
using testing::count_color;
using ::testing::HasSubstr;

const cv::Scalar kGray(100, 100, 100), kGreen(10, 200, 30), kBlue(200, 20, 20);

// Without padding the grid is exactly the scaled image.
GridOptions unpadded(int cell_height) {
  GridOptions o;
  o.cell_height = cell_height;
  o.padding = 0;
  return o;
}

// Text is drawn in dark gray; every test image here is lighter than the threshold.
bool has_dark_pixels(const cv::Mat& image, cv::Rect rect) {
  cv::Mat gray;
  cv::cvtColor(image(rect & cv::Rect(0, 0, image.cols, image.rows)), gray, cv::COLOR_BGR2GRAY);
  double lowest = 255;
  cv::minMaxLoc(gray, &lowest);
  return lowest < 90;
}

TEST(GridTest, SizeFollowsTheDocumentedLayoutAndImagesKeepTheirAspect) {
  GridOptions o;
  o.cell_height = 64;
  o.padding = 6;
  const std::vector<std::vector<GridCell>> rows = {
      {{cv::Mat(32, 32, CV_8UC1, cv::Scalar(100)), ""},                  // gray  -> 64 x 64
       {cv::Mat(32, 16, CV_8UC3, kGreen), ""}},                          // BGR   -> 32 wide
      {{cv::Mat(128, 64, CV_8UC4, cv::Scalar(200, 20, 20, 255)), ""}}};  // BGRA -> 32 wide
  const cv::Mat grid = render_grid(rows, o);
  EXPECT_EQ(grid.type(), CV_8UC3);
  // Columns are 64 and 32 wide: 6 + (64 + 6) + (32 + 6); two rows of 64 + 6 under 6.
  EXPECT_EQ(grid.cols, 114);
  EXPECT_EQ(grid.rows, 146);
  EXPECT_EQ(count_color(grid, kGray), 64 * 64);
  EXPECT_EQ(count_color(grid, kGreen), 64 * 32);
  EXPECT_EQ(count_color(grid, kBlue), 64 * 32);
  // The green image sits in row 0, centred in column 1 (which starts at x = 76).
  EXPECT_EQ(count_color(grid, kGreen, cv::Rect(76, 6, 32, 64)), 64 * 32);
}

TEST(GridTest, NearestNeighbourUpscalingKeepsACheckerboardCrisp) {
  cv::Mat board(2, 2, CV_8UC3);
  board.at<cv::Vec3b>(0, 0) = {0, 0, 255};
  board.at<cv::Vec3b>(0, 1) = {0, 255, 0};
  board.at<cv::Vec3b>(1, 0) = {255, 0, 0};
  board.at<cv::Vec3b>(1, 1) = {0, 0, 0};
  const cv::Mat grid = render_grid({{{board, ""}}}, unpadded(64));
  ASSERT_EQ(grid.size(), cv::Size(64, 64));
  for (int qy = 0; qy < 2; ++qy)
    for (int qx = 0; qx < 2; ++qx) {
      const cv::Vec3b c = board.at<cv::Vec3b>(qy, qx);
      EXPECT_EQ(count_color(grid, cv::Scalar(c[0], c[1], c[2]), cv::Rect(qx * 32, qy * 32, 32, 32)),
                32 * 32)
          << qx << "," << qy;
    }
}

TEST(GridTest, DownscalingAveragesInsteadOfDroppingPixels) {
  cv::Mat stripes(4, 4, CV_8UC1);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) stripes.at<uchar>(y, x) = (x % 2) ? 200 : 0;
  const cv::Mat grid = render_grid({{{stripes, ""}}}, unpadded(2));
  ASSERT_EQ(grid.size(), cv::Size(2, 2));
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 2; ++x) EXPECT_EQ(grid.at<cv::Vec3b>(y, x), cv::Vec3b(100, 100, 100));
}

TEST(GridTest, RaggedRowsAndBlankCells) {
  GridOptions o;
  o.cell_height = 64;
  const cv::Mat a(32, 32, CV_8UC3, kGreen);
  // Column 1 has only a blank cell: it keeps a square 64 px slot.
  const cv::Mat grid = render_grid({{{a, ""}, {cv::Mat(), ""}, {a, ""}}, {{a, ""}}}, o);
  EXPECT_EQ(grid.cols, 6 + 3 * (64 + 6));
  EXPECT_EQ(grid.rows, 6 + 2 * (64 + 6));
  EXPECT_EQ(count_color(grid, kGreen), 3 * 64 * 64);
}

TEST(GridTest, LabelsTitleAndCaptionsAddTextAroundTheCells) {
  const cv::Mat a(32, 32, CV_8UC3, kGreen);
  GridOptions plain;
  plain.cell_height = 64;
  GridOptions labelled = plain;
  labelled.title = "de-identified crops";
  labelled.row_labels = {"raw"};
  labelled.column_labels = {"id 1"};
  const cv::Mat without = render_grid({{{a, ""}}}, plain);
  const cv::Mat with = render_grid({{{a, "eps=1e5"}}}, labelled);
  EXPECT_GT(with.cols, without.cols);
  EXPECT_GT(with.rows, without.rows);
  EXPECT_EQ(count_color(with, kGreen), 64 * 64);
  // Dark text left of the image (row label), above it (title, column label), below (caption).
  cv::Mat mask;
  cv::inRange(with, kGreen, kGreen, mask);
  const cv::Rect image = cv::boundingRect(mask);
  EXPECT_TRUE(has_dark_pixels(with, cv::Rect(0, image.y, image.x, image.height)));
  EXPECT_TRUE(has_dark_pixels(with, cv::Rect(0, 0, with.cols, image.y)));
  EXPECT_TRUE(
      has_dark_pixels(with, cv::Rect(0, image.br().y, with.cols, with.rows - image.br().y)));
  EXPECT_FALSE(has_dark_pixels(without, cv::Rect(0, 0, without.cols, without.rows)));
}

TEST(GridTest, BadInputIsAnError) {
  using testing::error_of;
  EXPECT_THAT(error_of([] { render_grid({}, {}); }), HasSubstr("no cells"));
  EXPECT_THAT(error_of([] { render_grid({{}, {}}, {}); }), HasSubstr("no cells"));
  const cv::Mat ok(4, 4, CV_8UC3, cv::Scalar::all(0));
  EXPECT_THAT(error_of([&] {
                render_grid({{{ok, ""}, {cv::Mat(4, 4, CV_32FC3), ""}}}, {});
              }),
              AllOf(HasSubstr("row 0 column 1"), HasSubstr("8-bit")));
  GridOptions labels;
  labels.row_labels = {"a", "b"};
  EXPECT_THAT(error_of([&] { render_grid({{{ok, ""}}}, labels); }), HasSubstr("2 row labels"));
  GridOptions zero;
  zero.cell_height = 0;
  EXPECT_THAT(error_of([&] { render_grid({{{ok, ""}}}, zero); }), HasSubstr("cell_height"));
}

}  // namespace
}  // namespace ppreid::sim::report
