// Add, Subtract, Multiply, Average, Maximum, Minimum: forward and backward side by side.
// Layout: every input, the output and the gradients are the same flat run of n * sample floats,
// so each op is a plain loop over contiguous floats that the compiler vectorises. With k inputs
// the loops run input by input over blocks of kBlock floats (64 KB: the block of the output and
// of the input being read stay in L2 between passes).
// Threading: blocks are split over threads only for large tensors (>= kParallelMin floats); each
// element is computed by the same operations in the same order whatever the thread count, so
// results do not depend on it.
#include "layers/merge.hpp"

#include <algorithm>

#include "cnnx/error.hpp"
#include "core/parallel_for.hpp"

namespace cnnx {
namespace {

constexpr std::int64_t kBlock = 1 << 14;
// Below this, waking the thread team costs more than the memory-bound loop gains.
constexpr std::int64_t kParallelMin = 1 << 17;

template <class Body>
void for_blocks(std::int64_t total, Body&& body) {
  parallel_for_blocks(total, kBlock, total >= kParallelMin, body);
}

// Whether Keras would accept the two shapes by broadcasting (size-1 axes, lower ranks padded).
bool keras_broadcastable(const Shape& a, const Shape& b) {
  const std::size_t m = std::min(a.size(), b.size());
  for (std::size_t i = 1; i <= m; ++i) {
    const std::int64_t p = a[a.size() - i], q = b[b.size() - i];
    if (p != q && p != 1 && q != 1) return false;
  }
  return true;
}

}  // namespace

std::string Merge::class_name() const {
  switch (op_) {
    case MergeOp::add: return "Add";
    case MergeOp::subtract: return "Subtract";
    case MergeOp::multiply: return "Multiply";
    case MergeOp::average: return "Average";
    case MergeOp::maximum: return "Maximum";
    case MergeOp::minimum: return "Minimum";
  }
  return "Merge";
}

Shape Merge::do_build(const Shape& input_shape, Rng& rng) {
  (void)rng;
  throw ValueError(where() + ": a merge layer should be called on a list of inputs, received a single input shape " +
                   shape_str(input_shape));
}

Shape Merge::do_build_inputs(const std::vector<Shape>& shapes, Rng& rng) {
  (void)rng;
  const Shape& first = shapes.front();
  for (std::size_t i = 1; i < shapes.size(); ++i) {
    if (shapes[i] == first) continue;
    if (keras_broadcastable(first, shapes[i]))
      throw ValueError(where() + ": expected inputs of equal shapes (cnnx does not broadcast size-1 axes or lower " +
                       "ranks as Keras does), received shapes " + shape_str(first) + " and " + shape_str(shapes[i]));
    throw ValueError(where() + ": Inputs have incompatible shapes. Received shapes " + shape_str(first) + " and " +
                     shape_str(shapes[i]));
  }
  return first;
}

void Merge::forward(const float* x, float* y, std::int64_t n, bool training) {
  (void)x, (void)y, (void)n, (void)training;
  throw ValueError(where() + ": a merge layer should be called on a list of inputs (forward_inputs), received one");
}

void Merge::backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) {
  (void)x, (void)y, (void)dy, (void)dx, (void)n;
  throw ValueError(where() + ": a merge layer should be called on a list of inputs (backward_inputs), received one");
}

void Merge::forward_inputs(const float* const* xs, float* y, std::int64_t n, bool training) {
  (void)training;
  const std::int64_t k = static_cast<std::int64_t>(input_shapes().size());
  const float kf = static_cast<float>(k);
  const MergeOp op = op_;
  for_blocks(checked_mul(n, shape_size(input_shape())), [&](std::int64_t begin, std::int64_t count) {
    float* o = y + begin;
    const float* a = xs[0] + begin;
    if (k == 1) {
      for (std::int64_t j = 0; j < count; ++j) o[j] = a[j];
      return;
    }
    const float* b = xs[1] + begin;
    switch (op) {
      case MergeOp::add:
      case MergeOp::average:
        for (std::int64_t j = 0; j < count; ++j) o[j] = a[j] + b[j];
        for (std::int64_t i = 2; i < k; ++i) {
          const float* c = xs[i] + begin;
          for (std::int64_t j = 0; j < count; ++j) o[j] += c[j];
        }
        // Keras divides the sum (not a multiply by 1/k, which rounds differently).
        if (op == MergeOp::average)
          for (std::int64_t j = 0; j < count; ++j) o[j] /= kf;
        break;
      case MergeOp::subtract:
        for (std::int64_t j = 0; j < count; ++j) o[j] = a[j] - b[j];
        break;
      case MergeOp::multiply:
        for (std::int64_t j = 0; j < count; ++j) o[j] = a[j] * b[j];
        for (std::int64_t i = 2; i < k; ++i) {
          const float* c = xs[i] + begin;
          for (std::int64_t j = 0; j < count; ++j) o[j] *= c[j];
        }
        break;
      // A later input replaces the running extreme only when strictly beyond it: ties keep the
      // first input, the one backward credits.
      case MergeOp::maximum:
        for (std::int64_t j = 0; j < count; ++j) o[j] = b[j] > a[j] ? b[j] : a[j];
        for (std::int64_t i = 2; i < k; ++i) {
          const float* c = xs[i] + begin;
          for (std::int64_t j = 0; j < count; ++j) o[j] = c[j] > o[j] ? c[j] : o[j];
        }
        break;
      case MergeOp::minimum:
        for (std::int64_t j = 0; j < count; ++j) o[j] = b[j] < a[j] ? b[j] : a[j];
        for (std::int64_t i = 2; i < k; ++i) {
          const float* c = xs[i] + begin;
          for (std::int64_t j = 0; j < count; ++j) o[j] = c[j] < o[j] ? c[j] : o[j];
        }
        break;
    }
  });
}

void Merge::backward_inputs(const float* const* xs, const float* y, float* dy, float* const* dxs, std::int64_t n) {
  const std::int64_t k = static_cast<std::int64_t>(input_shapes().size());
  const float kf = static_cast<float>(k);
  const MergeOp op = op_;
  bool any = false;
  for (std::int64_t i = 0; i < k; ++i) any = any || dxs[i] != nullptr;
  if (!any) return;
  for_blocks(checked_mul(n, shape_size(input_shape())), [&](std::int64_t begin, std::int64_t count) {
    float* g = dy + begin;
    switch (op) {
      case MergeOp::add:
      case MergeOp::subtract:
        for (std::int64_t i = 0; i < k; ++i) {
          if (!dxs[i]) continue;
          float* d = dxs[i] + begin;
          if (op == MergeOp::subtract && i == 1)
            for (std::int64_t j = 0; j < count; ++j) d[j] = -g[j];
          else
            for (std::int64_t j = 0; j < count; ++j) d[j] = g[j];
        }
        break;
      case MergeOp::average:
        for (std::int64_t i = 0; i < k; ++i) {
          if (!dxs[i]) continue;
          float* d = dxs[i] + begin;
          for (std::int64_t j = 0; j < count; ++j) d[j] = g[j] / kf;
        }
        break;
      // The product of the other inputs, multiplied out (not y / x_i, which fails at x_i = 0).
      case MergeOp::multiply:
        for (std::int64_t i = 0; i < k; ++i) {
          if (!dxs[i]) continue;
          float* d = dxs[i] + begin;
          for (std::int64_t j = 0; j < count; ++j) d[j] = g[j];
          for (std::int64_t m = 0; m < k; ++m) {
            if (m == i) continue;
            const float* c = xs[m] + begin;
            for (std::int64_t j = 0; j < count; ++j) d[j] *= c[j];
          }
        }
        break;
      // The first input equal to y takes the element's gradient, which is then zeroed in dy so
      // that later inputs tying with it get none (also when that first input needs no dx).
      case MergeOp::maximum:
      case MergeOp::minimum: {
        const float* out = y + begin;
        for (std::int64_t i = 0; i < k; ++i) {
          const float* c = xs[i] + begin;
          float* d = dxs[i] ? dxs[i] + begin : nullptr;
          if (d)
            for (std::int64_t j = 0; j < count; ++j) {
              const float gj = g[j];  // loaded unconditionally, so the select vectorises
              d[j] = c[j] == out[j] ? gj : 0.0f;
            }
          if (i + 1 < k)
            for (std::int64_t j = 0; j < count; ++j) g[j] = c[j] == out[j] ? 0.0f : g[j];
        }
        break;
      }
    }
  });
}

// The public factory (cnnx/layers/merge.hpp).
std::shared_ptr<Layer> make_add(std::string name) { return std::make_shared<Add>(std::move(name)); }
std::shared_ptr<Layer> make_subtract(std::string name) { return std::make_shared<Subtract>(std::move(name)); }
std::shared_ptr<Layer> make_multiply(std::string name) { return std::make_shared<Multiply>(std::move(name)); }
std::shared_ptr<Layer> make_average(std::string name) { return std::make_shared<Average>(std::move(name)); }
std::shared_ptr<Layer> make_maximum(std::string name) { return std::make_shared<Maximum>(std::move(name)); }
std::shared_ptr<Layer> make_minimum(std::string name) { return std::make_shared<Minimum>(std::move(name)); }

}  // namespace cnnx
