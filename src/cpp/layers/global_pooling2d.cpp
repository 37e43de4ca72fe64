// GlobalAveragePooling2D / GlobalMaxPooling2D: shapes here, the loops in kernels/pool.cpp.
// The max pool keeps its winners (argmax, sized by reserve()) for backward.
#include "layers/global_pooling2d.hpp"

#include <cstdint>

#include "cnnx/error.hpp"
#include "kernels/pool.hpp"

namespace cnnx {

Shape GlobalPooling2D::do_build(const Shape& in, Rng& rng) {
  (void)rng;
  if (in.size() != 3)
    throw ValueError(where() + ": expected input of rank 4 (batch, height, width, channels), received shape " +
                     batch_shape_str(in));
  if (checked_mul(in[0], in[1]) > INT32_MAX)
    throw ValueError(where() + ": input image too large for pooling indices, received shape " + shape_str(in));
  return keepdims_ ? Shape{1, 1, in[2]} : Shape{in[2]};
}

void GlobalAveragePooling2D::forward(const float* x, float* y, std::int64_t n, bool training) {
  (void)training;
  kernels::global_avg_pool_forward(x, n, pixels(), channels(), y);
}

void GlobalAveragePooling2D::backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) {
  (void)x;
  (void)y;
  if (dx) kernels::global_avg_pool_backward(dy, n, pixels(), channels(), dx);
}

void GlobalMaxPooling2D::reserve(std::int64_t batch) {
  const auto need = static_cast<std::size_t>(checked_mul(batch, channels()));
  if (argmax_.size() < need) argmax_.resize(need);
}

void GlobalMaxPooling2D::forward(const float* x, float* y, std::int64_t n, bool training) {
  (void)training;
  reserve(n);  // a no-op once the model has reserved its batch
  kernels::global_max_pool_forward(x, n, pixels(), channels(), y, argmax_.data());
}

void GlobalMaxPooling2D::backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) {
  (void)x;
  (void)y;
  if (dx) kernels::global_max_pool_backward(dy, argmax_.data(), n, pixels(), channels(), dx);
}

// The public factory (cnnx/layers/global_pooling2d.hpp).
std::shared_ptr<Layer> make_global_average_pooling2d(std::string name, bool keepdims) {
  return std::make_shared<GlobalAveragePooling2D>(std::move(name), keepdims);
}
std::shared_ptr<Layer> make_global_max_pooling2d(std::string name, bool keepdims) {
  return std::make_shared<GlobalMaxPooling2D>(std::move(name), keepdims);
}

}  // namespace cnnx
