// Pooling kernels on NHWC: max and average windows, and the global (whole-image) pools. Layout: x [n, h, w, c] -> y [n,
// oh, ow, c]; the channel loop is innermost so every tap reads c contiguous floats. Padding taps ("same") are skipped,
// never read as zeros, as in TensorFlow. The winner's offset inside its sample is kept (int32) so backward is a
// scatter; ties go to the first tap in (ky, kx) order. The common 2x2 / stride 2 / unpadded case has a branch-free path
// the compiler vectorises over channels. Average pooling divides by the number of taps inside the image, so "same"
// padding does not count padded positions (TensorFlow / Keras). Its backward spreads dy / count over the window. Global
// pools reduce the h*w pixels of each image to one row of c channels: average (backward broadcasts dy / (h*w)) and max
// (the winning pixel is kept per channel, ties to the first). Threading: parallel over images, since overlapping
// windows (stride < pool) scatter-add into the same input pixel within one image only; each image's sums run in a fixed
// order, so results do not depend on the thread count.
#pragma once

#include <cstdint>

#include "kernels/conv_geometry.hpp"

namespace cnnx::kernels {

void max_pool_forward(const float* x, std::int64_t n, const ConvGeometry& g, float* y, std::int32_t* argmax);
// dx is overwritten: zeros, plus dy scattered onto each window's winner. With `y` given (the
// pooled output), outputs with y <= 0 scatter nothing: that is the ReLU derivative of the layer
// before, applied here for free, so that layer can skip its own pass over its (4x larger) grad.
void max_pool_backward(const float* dy, const std::int32_t* argmax, std::int64_t n, const ConvGeometry& g, float* dx,
                       const float* relu_y = nullptr);

// y[img, oy, ox, c] = mean of the in-image taps of the window; dx overwritten.
void avg_pool_forward(const float* x, std::int64_t n, const ConvGeometry& g, float* y);
void avg_pool_backward(const float* dy, std::int64_t n, const ConvGeometry& g, float* dx);

// x [n, hw, c] -> y [n, c]. dx is overwritten.
void global_avg_pool_forward(const float* x, std::int64_t n, std::int64_t hw, std::int64_t c, float* y);
void global_avg_pool_backward(const float* dy, std::int64_t n, std::int64_t hw, std::int64_t c, float* dx);
// argmax [n, c]: the winning pixel index in [0, hw) per image and channel; NaN wins, as in max_pool.
void global_max_pool_forward(const float* x, std::int64_t n, std::int64_t hw, std::int64_t c, float* y,
                             std::int32_t* argmax);
void global_max_pool_backward(const float* dy, const std::int32_t* argmax, std::int64_t n, std::int64_t hw,
                              std::int64_t c, float* dx);

}  // namespace cnnx::kernels
