// Activation kernels on a row-major [rows, cols] block (rows = samples or pixels, cols = channels,
// so NHWC activations are just rows = N*H*W). Softmax normalises each row.
// Threading: parallel over rows with OpenMP when called outside a parallel region.
#pragma once

#include <cstdint>

#include "cnnx/activations.hpp"

namespace cnnx::kernels {

// y = act(y) in place.
void activation_forward(Activation act, float* y, std::int64_t rows, std::int64_t cols);
// Given the activation's output y and dL/dy in g, overwrites g with dL/dz.
void activation_backward(Activation act, const float* y, float* g, std::int64_t rows, std::int64_t cols);

}  // namespace cnnx::kernels
