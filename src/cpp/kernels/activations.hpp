// Activation kernels on a row-major [rows, cols] block (rows = samples or pixels, cols = channels,
// so NHWC activations are just rows = N*H*W). Softmax normalises each row.
// Threading: parallel over rows with OpenMP when called outside a parallel region.
#pragma once

#include <cstdint>

#include "cnnx/activations.hpp"

namespace cnnx::kernels {

// y = act(y) in place. `alpha` is leaky_relu's negative slope or elu's alpha (>= 0, so the
// output's sign is the input's and backward can work from the output); the overload without
// it uses Keras' defaults for the string names (activation_default_alpha).
void activation_forward(Activation act, float* y, std::int64_t rows, std::int64_t cols, float alpha);
void activation_forward(Activation act, float* y, std::int64_t rows, std::int64_t cols);
// Given the activation's output y and dL/dy in g, overwrites g with dL/dz.
void activation_backward(Activation act, const float* y, float* g, std::int64_t rows, std::int64_t cols, float alpha);
void activation_backward(Activation act, const float* y, float* g, std::int64_t rows, std::int64_t cols);
// The same with Keras' default alpha, written to `out` and leaving g as it was (serial: for one
// cache-sized chunk inside a caller's parallel loop).
void activation_backward_to(Activation act, const float* y, const float* g, float* out, std::int64_t rows,
                            std::int64_t cols);

// Keras' general relu(x, negative_slope, max_value, threshold) (the ReLU layer with non-default
// arguments): x > threshold -> min(x, max_value), else negative_slope * (x - threshold).
// Backward reads the input x, since a clipped output does not tell which side it came from.
void relu_general_forward(const float* x, float* y, std::int64_t n, float negative_slope, float max_value,
                          float threshold);
void relu_general_backward(const float* x, const float* dy, float* dx, std::int64_t n, float negative_slope,
                           float max_value, float threshold);

}  // namespace cnnx::kernels
