#!/usr/bin/python3
"""epsilon-image DP in vectorized NumPy: the baseline beside bench_image_dp's C++ rows.

The same mechanism as core/deid/image_dp.cpp for b = 0 (presets A and D): quantize each channel
value to L = 2^(8-c) levels, add discrete Laplace noise with t = epsilon / Delta (the difference of
two geometric variables, NumPy's generator), clamp to [0, L-1], render bin centres. Tight
calibration, Delta = blocks * 3 * (L-1). One 128x64 RGB image per call, one core, images/s.

Run:  python3 bench/image_dp_numpy.py            (needs Debian's python3-numpy)
"""
import sys
import time

import numpy as np


def image_dp(img, epsilon, color_bits, rng):
    levels = 1 << (8 - color_bits)
    delta = img.shape[0] * img.shape[1] * 3 * (levels - 1)
    t = epsilon / delta
    p = -np.expm1(-t)  # success probability of a geometric variable with P(G >= g) = e^(-t g)
    x = img >> color_bits
    noise = rng.geometric(p, size=x.shape) - rng.geometric(p, size=x.shape)
    y = np.clip(x.astype(np.int64) + noise, 0, levels - 1)
    half = (1 << (color_bits - 1)) if color_bits > 0 else 0
    return ((y << color_bits) | half).astype(np.uint8)


def main():
    rng = np.random.default_rng(42)
    img = rng.integers(0, 256, size=(128, 64, 3), dtype=np.uint8)
    epsilon = 1e5  # as bench_image_dp
    for name, color_bits in (("A", 6), ("D", 0)):
        image_dp(img, epsilon, color_bits, rng)  # warm up
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < 2.0:
            image_dp(img, epsilon, color_bits, rng)
            n += 1
        rate = n / (time.perf_counter() - start)
        print(f"preset {name} (b=0, c={color_bits}), numpy {np.__version__}: {rate:,.0f} images/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
