#pragma once

// Text drawing shared by plots and grids: one font, boxes anchored at their top-left corner
// (cv::putText anchors at the baseline, which makes layout arithmetic error-prone). Hershey
// fonts are ASCII only: other characters come out as '?'.

#include <opencv2/core.hpp>
#include <string>

namespace ppreid::sim::report {

inline constexpr double kTextScale = 0.45;  // small but legible at 100 % zoom
inline constexpr double kTitleScale = 0.6;
inline const cv::Scalar kTextColor(40, 40, 40);

// Width and full height (ascent + descent) of `text` in the Hershey simplex font.
cv::Size text_size(const std::string& text, double scale = kTextScale);

// Height of one line of text at `scale`, the same for every string so rows line up.
int line_height(double scale = kTextScale);

void draw_text(cv::Mat& image, const std::string& text, cv::Point top_left,
               double scale = kTextScale, const cv::Scalar& color = kTextColor);

// Text rotated 90 degrees counter-clockwise (reads bottom to top), for y-axis labels; the
// rotated box (height x width of the text) has its top-left corner at `top_left`.
void draw_text_vertical(cv::Mat& image, const std::string& text, cv::Point top_left,
                        double scale = kTextScale, const cv::Scalar& color = kTextColor);

}  // namespace ppreid::sim::report
