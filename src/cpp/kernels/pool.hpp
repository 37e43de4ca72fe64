// Max-pooling kernels on NHWC. Layout: x [n, h, w, c] -> y [n, oh, ow, c]; the channel loop is
// innermost so every tap reads c contiguous floats. Padding taps ("same") are skipped, never
// read as zeros, as in TensorFlow. The winner's offset inside its sample is kept (int32) so
// backward is a scatter; ties go to the first tap in (ky, kx) order.
// The common 2x2 / stride 2 / unpadded case has a branch-free path the compiler vectorises
// over channels.
// Threading: parallel over images, since overlapping windows (stride < pool) scatter-add into
// the same input pixel within one image only.
#pragma once

#include <cstdint>

#include "cnnx/conv_geometry.hpp"

namespace cnnx::kernels {

void max_pool_forward(const float* x, std::int64_t n, const ConvGeometry& g, float* y, std::int32_t* argmax);
// dx is overwritten: zeros, plus dy scattered onto each window's winner. With `y` given (the
// pooled output), outputs with y <= 0 scatter nothing: that is the ReLU derivative of the layer
// before, applied here for free, so that layer can skip its own pass over its (4x larger) grad.
void max_pool_backward(const float* dy, const std::int32_t* argmax, std::int64_t n, const ConvGeometry& g, float* dx,
                       const float* relu_y = nullptr);

}  // namespace cnnx::kernels
