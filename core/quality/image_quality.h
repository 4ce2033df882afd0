#pragma once

#include <opencv2/core.hpp>

namespace ppreid::quality {

// Mean SSIM (Wang et al. 2004) on the luminance channel, matching scikit-image's
// structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
// data_range=255): 11x11 Gaussian window, K1 = 0.01, K2 = 0.03, averaged over the pixels whose
// window lies inside the image. Luminance is ITU-R BT.601 (Y = 0.299 R + 0.587 G + 0.114 B) in
// floating point. Both images must have the same size; 8-bit BGR or 8-bit gray.
double ssim(const cv::Mat& a, const cv::Mat& b);

// PSNR in dB over all channels with peak 255; +infinity for identical images.
double psnr(const cv::Mat& a, const cv::Mat& b);

}  // namespace ppreid::quality
