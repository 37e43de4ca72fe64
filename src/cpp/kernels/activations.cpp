// Activations, [rows, cols] row-major (NHWC flattened). Backward is written in terms of the
// forward OUTPUT y, so layers keep only their output, not the pre-activation: relu' = (y > 0),
// sigmoid' = y(1-y), tanh' = 1-y^2, softmax J^T g = y * (g - <g, y>).
// Threading: OpenMP static over rows (element-wise ops are memory-bound; 2 threads still help).
#include "kernels/activations.hpp"

#include <algorithm>
#include <cmath>

#include "cnnx/error.hpp"
#include "cnnx/parallel.hpp"

namespace cnnx {

Activation parse_activation(const std::string& name, const std::string& where) {
  if (name == "linear" || name.empty() || name == "None") return Activation::linear;
  if (name == "relu") return Activation::relu;
  if (name == "sigmoid") return Activation::sigmoid;
  if (name == "tanh") return Activation::tanh;
  if (name == "softmax") return Activation::softmax;
  throw ValueError(where + ": unknown activation '" + name +
                   "'; expected one of linear, relu, sigmoid, tanh, softmax");
}

const char* activation_name(Activation a) {
  switch (a) {
    case Activation::linear: return "linear";
    case Activation::relu: return "relu";
    case Activation::sigmoid: return "sigmoid";
    case Activation::tanh: return "tanh";
    case Activation::softmax: return "softmax";
  }
  return "linear";
}

namespace kernels {
namespace {
constexpr std::int64_t kParallelMin = 1 << 15;  // below this, thread start-up costs more
}

void activation_forward(Activation act, float* y, std::int64_t rows, std::int64_t cols) {
  if (act == Activation::linear) return;
  const std::int64_t n = rows * cols;
  const bool par = n >= kParallelMin && !in_parallel_region();
  const int nt = get_num_threads();
  (void)par; (void)nt;
  if (act == Activation::softmax) {
#pragma omp parallel for schedule(static) if (par) num_threads(nt)
    for (std::int64_t r = 0; r < rows; ++r) {
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
    }
    return;
  }
  // One branch-free loop per activation (a switch inside the loop kept gcc from vectorising it
  // and cost a mispredicted branch on every other ReLU element).
  switch (act) {
    case Activation::relu:
#pragma omp parallel for schedule(static) if (par) num_threads(nt)
      for (std::int64_t i = 0; i < n; ++i) y[i] = y[i] > 0.0f ? y[i] : 0.0f;
      break;
    case Activation::sigmoid:
#pragma omp parallel for schedule(static) if (par) num_threads(nt)
      for (std::int64_t i = 0; i < n; ++i) y[i] = 1.0f / (1.0f + std::exp(-y[i]));
      break;
    case Activation::tanh:
#pragma omp parallel for schedule(static) if (par) num_threads(nt)
      for (std::int64_t i = 0; i < n; ++i) y[i] = std::tanh(y[i]);
      break;
    default:
      break;
  }
}

void activation_backward(Activation act, const float* y, float* g, std::int64_t rows, std::int64_t cols) {
  if (act == Activation::linear) return;
  const std::int64_t n = rows * cols;
  const bool par = n >= kParallelMin && !in_parallel_region();
  const int nt = get_num_threads();
  (void)par; (void)nt;
  if (act == Activation::softmax) {
#pragma omp parallel for schedule(static) if (par) num_threads(nt)
    for (std::int64_t r = 0; r < rows; ++r) {
      const float* yr = y + r * cols;
      float* gr = g + r * cols;
      float dot = 0.0f;
      for (std::int64_t c = 0; c < cols; ++c) dot += gr[c] * yr[c];
      for (std::int64_t c = 0; c < cols; ++c) gr[c] = yr[c] * (gr[c] - dot);
    }
    return;
  }
  switch (act) {
    case Activation::relu:
#pragma omp parallel for schedule(static) if (par) num_threads(nt)
      for (std::int64_t i = 0; i < n; ++i) g[i] = y[i] > 0.0f ? g[i] : 0.0f;
      break;
    case Activation::sigmoid:
#pragma omp parallel for schedule(static) if (par) num_threads(nt)
      for (std::int64_t i = 0; i < n; ++i) g[i] *= y[i] * (1.0f - y[i]);
      break;
    case Activation::tanh:
#pragma omp parallel for schedule(static) if (par) num_threads(nt)
      for (std::int64_t i = 0; i < n; ++i) g[i] *= 1.0f - y[i] * y[i];
      break;
    default:
      break;
  }
}

}  // namespace kernels
}  // namespace cnnx
