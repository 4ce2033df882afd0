#pragma once

// Image grids for reports: raw vs de-identified crops, one row per method or epsilon.

#include <opencv2/core.hpp>
#include <string>
#include <vector>

namespace ppreid::sim::report {

struct GridCell {
  cv::Mat image;  // 8-bit gray, BGR or BGRA (alpha dropped); empty = blank cell
  std::string caption;
};

struct GridOptions {
  int cell_height = 128;  // every image is scaled to this height, keeping its aspect ratio
  int padding = 6;        // around and between cells
  std::vector<std::string> row_labels, column_labels;  // at most one per row / column
  std::string title;
};

// CV_8UC3 BGR on white. Rows may have different lengths; a column is as wide as its widest
// image or caption and each cell is centred in it. Upscaling is nearest-neighbour so that
// pixelization stays visible; downscaling averages (INTER_AREA). Without title, labels and
// captions the size is exactly
//   width  = padding + sum(column widths) + padding * columns
//   height = padding + rows * (cell_height + padding).
// Throws ppreid::Error for an empty grid, non-8-bit images, or more labels than rows/columns.
cv::Mat render_grid(const std::vector<std::vector<GridCell>>& rows, const GridOptions& options);

}  // namespace ppreid::sim::report
