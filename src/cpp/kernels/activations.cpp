// Activations, [rows, cols] row-major (NHWC flattened). Backward is written in terms of the
// forward OUTPUT y, so layers keep only their output, not the pre-activation: relu' = (y > 0),
// sigmoid' = y(1-y), tanh' = 1-y^2, softmax J^T g = y * (g - <g, y>), leaky_relu' = (y > 0 ? 1 :
// alpha), elu' = (y > 0 ? 1 : y + alpha) -- valid because alpha >= 0 keeps the sign of x in y.
// Threading: OpenMP static over rows (element-wise ops are memory-bound; 2 threads still help).
#include "kernels/activations.hpp"

#include <algorithm>
#include <cmath>

#include "cnnx/error.hpp"
#include "core/parallel_for.hpp"

namespace cnnx {

Activation parse_activation(const std::string& name, const std::string& where) {
  if (name == "linear" || name.empty() || name == "None") return Activation::linear;
  if (name == "relu") return Activation::relu;
  if (name == "sigmoid") return Activation::sigmoid;
  if (name == "tanh") return Activation::tanh;
  if (name == "softmax") return Activation::softmax;
  if (name == "leaky_relu") return Activation::leaky_relu;
  if (name == "elu") return Activation::elu;
  throw ValueError(where + ": unknown activation '" + name +
                   "'; expected one of linear, relu, sigmoid, tanh, softmax, leaky_relu, elu");
}

const char* activation_name(Activation a) {
  switch (a) {
    case Activation::linear: return "linear";
    case Activation::relu: return "relu";
    case Activation::sigmoid: return "sigmoid";
    case Activation::tanh: return "tanh";
    case Activation::softmax: return "softmax";
    case Activation::leaky_relu: return "leaky_relu";
    case Activation::elu: return "elu";
  }
  return "linear";
}

float activation_default_alpha(Activation a) {
  if (a == Activation::leaky_relu) return 0.2f;
  if (a == Activation::elu) return 1.0f;
  return 0.0f;
}

namespace kernels {
namespace {
constexpr std::int64_t kParallelMin = 1 << 15;  // below this, thread start-up costs more
}

void activation_forward(Activation act, float* y, std::int64_t rows, std::int64_t cols) {
  activation_forward(act, y, rows, cols, activation_default_alpha(act));
}

void activation_backward(Activation act, const float* y, float* g, std::int64_t rows, std::int64_t cols) {
  activation_backward(act, y, g, rows, cols, activation_default_alpha(act));
}

void activation_backward_to(Activation act, const float* y, const float* g, float* out, std::int64_t rows,
                            std::int64_t cols) {
  const std::int64_t n = rows * cols;
  if (act == Activation::relu) {  // one pass instead of a copy and a pass
    for (std::int64_t i = 0; i < n; ++i) {
      const float gi = g[i];  // loaded unconditionally, so the select vectorises without branches
      out[i] = y[i] > 0.0f ? gi : 0.0f;
    }
    return;
  }
  std::copy(g, g + n, out);
  activation_backward(act, y, out, rows, cols);
}

void activation_forward(Activation act, float* y, std::int64_t rows, std::int64_t cols, float alpha) {
  if (act == Activation::linear) return;
  const std::int64_t n = rows * cols;
  const bool par = n >= kParallelMin;
  if (act == Activation::softmax) {
    parallel_for(rows, par, [&](std::int64_t r) {
      float* row = y + r * cols;
      float mx = row[0];
      for (std::int64_t c = 1; c < cols; ++c) mx = std::max(mx, row[c]);
      float sum = 0.0f;
      for (std::int64_t c = 0; c < cols; ++c) {
        row[c] = std::exp(row[c] - mx);
        sum += row[c];
      }
      const float inv = 1.0f / sum;
      for (std::int64_t c = 0; c < cols; ++c) row[c] *= inv;
    });
    return;
  }
  // One branch-free loop per activation (a switch inside the loop kept gcc from vectorising it
  // and cost a mispredicted branch on every other ReLU element).
  switch (act) {
    case Activation::relu: parallel_for(n, par, [&](std::int64_t i) { y[i] = y[i] > 0.0f ? y[i] : 0.0f; }); break;
    case Activation::sigmoid:
      parallel_for(n, par, [&](std::int64_t i) { y[i] = 1.0f / (1.0f + std::exp(-y[i])); });
      break;
    case Activation::tanh: parallel_for(n, par, [&](std::int64_t i) { y[i] = std::tanh(y[i]); }); break;
    case Activation::leaky_relu:
      parallel_for(n, par, [&](std::int64_t i) { y[i] = y[i] > 0.0f ? y[i] : alpha * y[i]; });
      break;
    case Activation::elu:
      // expm1 of min(x, 0): exact near 0 and no overflow on the (discarded) positive side.
      parallel_for(n, par, [&](std::int64_t i) {
        const float v = y[i], e = alpha * std::expm1(std::min(v, 0.0f));
        y[i] = v > 0.0f ? v : e;
      });
      break;
    default: break;
  }
}

void activation_backward(Activation act, const float* y, float* g, std::int64_t rows, std::int64_t cols, float alpha) {
  if (act == Activation::linear) return;
  const std::int64_t n = rows * cols;
  const bool par = n >= kParallelMin;
  if (act == Activation::softmax) {
    parallel_for(rows, par, [&](std::int64_t r) {
      const float* yr = y + r * cols;
      float* gr = g + r * cols;
      float dot = 0.0f;
      for (std::int64_t c = 0; c < cols; ++c) dot += gr[c] * yr[c];
      for (std::int64_t c = 0; c < cols; ++c) gr[c] = yr[c] * (gr[c] - dot);
    });
    return;
  }
  switch (act) {
    case Activation::relu: parallel_for(n, par, [&](std::int64_t i) { g[i] = y[i] > 0.0f ? g[i] : 0.0f; }); break;
    case Activation::sigmoid: parallel_for(n, par, [&](std::int64_t i) { g[i] *= y[i] * (1.0f - y[i]); }); break;
    case Activation::tanh: parallel_for(n, par, [&](std::int64_t i) { g[i] *= 1.0f - y[i] * y[i]; }); break;
    case Activation::leaky_relu:
      parallel_for(n, par, [&](std::int64_t i) { g[i] *= y[i] > 0.0f ? 1.0f : alpha; });
      break;
    case Activation::elu:
      parallel_for(n, par, [&](std::int64_t i) { g[i] *= y[i] > 0.0f ? 1.0f : y[i] + alpha; });
      break;
    default: break;
  }
}

void relu_general_forward(const float* x, float* y, std::int64_t n, float negative_slope, float max_value,
                          float threshold) {
  const bool par = n >= kParallelMin;
  parallel_for(n, par, [&](std::int64_t i) {
    const float v = x[i], below = negative_slope * (v - threshold), above = std::min(v, max_value);
    y[i] = v > threshold ? above : below;
  });
}

void relu_general_backward(const float* x, const float* dy, float* dx, std::int64_t n, float negative_slope,
                           float max_value, float threshold) {
  const bool par = n >= kParallelMin;
  parallel_for(n, par, [&](std::int64_t i) {
    const float v = x[i];
    const float above = v < max_value ? 1.0f : 0.0f;
    dx[i] = dy[i] * (v > threshold ? above : negative_slope);
  });
}

}  // namespace kernels
}  // namespace cnnx
