// Concatenate forward and backward: row copies.
// Layout: with the concatenation axis s of the per-sample shape, a sample is outer_ =
// prod(shape[:s]) rows; in each row input i holds runs_[i] = prod(shape_i[s:]) contiguous floats,
// which land at offsets_[i] of the output row (out_run_ floats). For NHWC channels the rows are
// the pixels and each input's run is its channels. Backward copies the same runs of dy back out.
// Threading: rows are split over threads only for large tensors; copies give the same bits on
// any number of threads.
#include "layers/concatenate.hpp"

#include <algorithm>
#include <cstring>

#include "cnnx/error.hpp"
#include "core/parallel_for.hpp"

namespace cnnx {
namespace {

constexpr std::int64_t kBlockFloats = 1 << 14;  // output floats per task
constexpr std::int64_t kParallelMin = 1 << 17;  // below this, starting threads costs more

std::string shapes_str(const std::vector<Shape>& shapes) {
  std::string s = "[";
  for (std::size_t i = 0; i < shapes.size(); ++i) s += (i ? ", " : "") + batch_shape_str(shapes[i]);
  return s + "]";
}

// body(row_begin, row_count) over `rows` rows of `row_floats` floats each.
template <class Body>
void for_rows(std::int64_t rows, std::int64_t row_floats, Body&& body) {
  const std::int64_t block = std::max<std::int64_t>(1, kBlockFloats / std::max<std::int64_t>(row_floats, 1));
  parallel_for_blocks(rows, block, checked_mul(rows, row_floats) >= kParallelMin, body);
}

}  // namespace

Concatenate::Concatenate(std::string name, std::int64_t axis) : Layer(std::move(name)), axis_(axis) {
  if (axis_ == 0)
    throw ValueError(where() + ": concatenating along the batch axis is not supported; expected axis >= 1 or " +
                     "negative (-1: the last axis), received axis=0");
}

Shape Concatenate::do_build(const Shape& input_shape, Rng& rng) {
  (void)rng;
  throw ValueError(where() + ": a merge layer should be called on a list of inputs, received a single input shape " +
                   shape_str(input_shape));
}

Shape Concatenate::do_build_inputs(const std::vector<Shape>& shapes, Rng& rng) {
  (void)rng;
  const std::int64_t rank = static_cast<std::int64_t>(shapes.front().size()) + 1;  // with the batch axis
  const std::int64_t axis = axis_ < 0 ? axis_ + rank : axis_;
  if (axis == 0)
    throw ValueError(where() + ": concatenating along the batch axis is not supported; expected axis in [1, " +
                     std::to_string(rank - 1) + "] or [" + std::to_string(-(rank - 1)) + ", -1] for inputs of shape " +
                     batch_shape_str(shapes.front()) + ", received axis=" + std::to_string(axis_));
  if (axis < 0 || axis >= rank)
    throw ValueError(where() + ": expected axis in [1, " + std::to_string(rank - 1) + "] or [" +
                     std::to_string(-(rank - 1)) + ", -1] for inputs of shape " + batch_shape_str(shapes.front()) +
                     ", received axis=" + std::to_string(axis_));
  const std::size_t s = static_cast<std::size_t>(axis - 1);
  Shape out = shapes.front();
  for (std::size_t i = 1; i < shapes.size(); ++i) {
    bool match = shapes[i].size() == out.size();
    for (std::size_t d = 0; match && d < out.size(); ++d) match = d == s || shapes[i][d] == out[d];
    if (!match)
      throw ValueError(where() +
                       ": A `Concatenate` layer requires inputs with matching shapes except for the concatenation "
                       "axis. Received: input_shape=" +
                       shapes_str(shapes));
    out[s] = checked_add(out[s], shapes[i][s]);
  }
  outer_ = 1;
  for (std::size_t d = 0; d < s; ++d) outer_ = checked_mul(outer_, out[d]);
  runs_.clear();
  offsets_.clear();
  out_run_ = 0;
  for (const auto& shape : shapes) {
    std::int64_t run = 1;
    for (std::size_t d = s; d < shape.size(); ++d) run = checked_mul(run, shape[d]);
    runs_.push_back(run);
    offsets_.push_back(out_run_);
    out_run_ = checked_add(out_run_, run);
  }
  return out;
}

void Concatenate::forward(const float* x, float* y, std::int64_t n, bool training) {
  (void)x, (void)y, (void)n, (void)training;
  throw ValueError(where() + ": a merge layer should be called on a list of inputs (forward_inputs), received one");
}

void Concatenate::backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) {
  (void)x, (void)y, (void)dy, (void)dx, (void)n;
  throw ValueError(where() + ": a merge layer should be called on a list of inputs (backward_inputs), received one");
}

void Concatenate::forward_inputs(const float* const* xs, float* y, std::int64_t n, bool training) {
  (void)training;
  const std::size_t k = runs_.size();
  for_rows(checked_mul(n, outer_), out_run_, [&](std::int64_t begin, std::int64_t count) {
    for (std::size_t i = 0; i < k; ++i) {
      const std::int64_t run = runs_[i];
      const float* src = xs[i] + begin * run;
      float* dst = y + begin * out_run_ + offsets_[i];
      for (std::int64_t r = 0; r < count; ++r)
        std::memcpy(dst + r * out_run_, src + r * run, sizeof(float) * static_cast<std::size_t>(run));
    }
  });
}

void Concatenate::backward_inputs(const float* const* xs, const float* y, float* dy, float* const* dxs,
                                  std::int64_t n) {
  (void)xs, (void)y;
  const std::size_t k = runs_.size();
  for_rows(checked_mul(n, outer_), out_run_, [&](std::int64_t begin, std::int64_t count) {
    for (std::size_t i = 0; i < k; ++i) {
      if (!dxs[i]) continue;
      const std::int64_t run = runs_[i];
      const float* src = dy + begin * out_run_ + offsets_[i];
      float* dst = dxs[i] + begin * run;
      for (std::int64_t r = 0; r < count; ++r)
        std::memcpy(dst + r * run, src + r * out_run_, sizeof(float) * static_cast<std::size_t>(run));
    }
  });
}

// The public factory (cnnx/layers/concatenate.hpp).
std::shared_ptr<Layer> make_concatenate(std::string name, std::int64_t axis) {
  return std::make_shared<Concatenate>(std::move(name), axis);
}

}  // namespace cnnx
