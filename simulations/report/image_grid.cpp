#include "simulations/report/image_grid.h"

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>

#include "core/util/error.h"
#include "simulations/report/text.h"

namespace ppreid::sim::report {
namespace {

constexpr int kCaptionGap = 3;  // between an image and its caption

std::string grid_name(const GridOptions& o) {
  return o.title.empty() ? std::string("image grid") : "image grid '" + o.title + "'";
}

cv::Mat to_bgr(const cv::Mat& image, std::size_t row, std::size_t column, const GridOptions& o) {
  const std::string where =
      grid_name(o) + ", row " + std::to_string(row) + " column " + std::to_string(column) + ": ";
  if (image.depth() != CV_8U)
    throw Error(where + "images must be 8-bit (convert with convertTo first)");
  cv::Mat bgr;
  switch (image.channels()) {
    case 1:
      cv::cvtColor(image, bgr, cv::COLOR_GRAY2BGR);
      break;
    case 3:
      bgr = image;
      break;
    case 4:
      cv::cvtColor(image, bgr, cv::COLOR_BGRA2BGR);
      break;
    default:
      throw Error(where + std::to_string(image.channels()) +
                  " channels; expected 1 (gray), 3 (BGR) or 4 (BGRA)");
  }
  return bgr;
}

cv::Mat scale_to_height(const cv::Mat& bgr, int height) {
  const int width =
      std::max(1, static_cast<int>(std::lround(static_cast<double>(bgr.cols) * height / bgr.rows)));
  if (bgr.rows == height && bgr.cols == width) return bgr;
  cv::Mat out;
  // Nearest keeps the blocks of a pixelized or tiny image sharp instead of smearing them.
  cv::resize(bgr, out, {width, height}, 0, 0,
             height > bgr.rows ? cv::INTER_NEAREST : cv::INTER_AREA);
  return out;
}

bool any_nonempty(const std::vector<std::string>& texts) {
  return std::any_of(texts.begin(), texts.end(), [](const auto& t) { return !t.empty(); });
}

}  // namespace

cv::Mat render_grid(const std::vector<std::vector<GridCell>>& rows, const GridOptions& o) {
  if (o.cell_height < 1 || o.padding < 0)
    throw Error(grid_name(o) + ": cell_height must be >= 1 and padding >= 0");
  std::size_t columns = 0;
  for (const auto& row : rows) columns = std::max(columns, row.size());
  if (columns == 0) throw Error(grid_name(o) + " has no cells");
  if (o.row_labels.size() > rows.size() || o.column_labels.size() > columns)
    throw Error(grid_name(o) + ": " + std::to_string(o.row_labels.size()) + " row labels and " +
                std::to_string(o.column_labels.size()) + " column labels for " +
                std::to_string(rows.size()) + " rows and " + std::to_string(columns) + " columns");

  std::vector<std::vector<cv::Mat>> scaled(rows.size());
  std::vector<int> column_width(columns, 0);
  bool captions = false;
  for (std::size_t r = 0; r < rows.size(); ++r)
    for (std::size_t c = 0; c < rows[r].size(); ++c) {
      const GridCell& cell = rows[r][c];
      cv::Mat image;
      if (!cell.image.empty()) image = scale_to_height(to_bgr(cell.image, r, c, o), o.cell_height);
      scaled[r].push_back(image);
      column_width[c] = std::max({column_width[c], image.cols, text_size(cell.caption).width});
      captions = captions || !cell.caption.empty();
    }
  for (std::size_t c = 0; c < o.column_labels.size(); ++c)
    column_width[c] = std::max(column_width[c], text_size(o.column_labels[c]).width);
  for (int& w : column_width)
    if (w == 0) w = o.cell_height;  // an all-blank column keeps a square slot

  const int lh = line_height();
  const int title_height = o.title.empty() ? 0 : line_height(kTitleScale) + o.padding;
  const int column_label_height = any_nonempty(o.column_labels) ? lh + o.padding : 0;
  int row_label_width = 0;
  for (const auto& label : o.row_labels)
    row_label_width = std::max(row_label_width, text_size(label).width);
  if (row_label_width > 0) row_label_width += o.padding;
  const int row_height = o.cell_height + (captions ? kCaptionGap + lh : 0);

  std::vector<int> column_x(columns);
  int width = o.padding + row_label_width;
  for (std::size_t c = 0; c < columns; ++c) {
    column_x[c] = width;
    width += column_width[c] + o.padding;
  }
  const int grid_top = o.padding + title_height + column_label_height;
  const int height = grid_top + static_cast<int>(rows.size()) * (row_height + o.padding);

  cv::Mat canvas(height, width, CV_8UC3, cv::Scalar::all(255));
  if (!o.title.empty()) {
    const int w = text_size(o.title, kTitleScale).width;
    draw_text(canvas, o.title, {std::max(o.padding, (width - w) / 2), o.padding}, kTitleScale);
  }
  for (std::size_t c = 0; c < o.column_labels.size(); ++c) {
    const int w = text_size(o.column_labels[c]).width;
    draw_text(canvas, o.column_labels[c],
              {column_x[c] + (column_width[c] - w) / 2, o.padding + title_height});
  }
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const int top = grid_top + static_cast<int>(r) * (row_height + o.padding);
    if (r < o.row_labels.size())
      draw_text(canvas, o.row_labels[r], {o.padding, top + (o.cell_height - lh) / 2});
    for (std::size_t c = 0; c < rows[r].size(); ++c) {
      const cv::Mat& image = scaled[r][c];
      if (!image.empty())
        image.copyTo(canvas(cv::Rect(column_x[c] + (column_width[c] - image.cols) / 2, top,
                                     image.cols, image.rows)));
      const std::string& caption = rows[r][c].caption;
      const int w = text_size(caption).width;
      draw_text(canvas, caption,
                {column_x[c] + (column_width[c] - w) / 2, top + o.cell_height + kCaptionGap});
    }
  }
  return canvas;
}

}  // namespace ppreid::sim::report
