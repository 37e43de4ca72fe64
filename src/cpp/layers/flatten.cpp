// Flatten is a copy: the data is already contiguous NHWC, only the shape changes. The copy
// (a few KB per sample) keeps every layer's output in its own buffer, which backward relies on.
#include "layers/flatten.hpp"

#include <cstring>

namespace cnnx {

Shape Flatten::do_build(const Shape& in, Rng& rng) {
  (void)rng;
  return {shape_size(in)};
}

void Flatten::forward(const float* x, float* y, std::int64_t n, bool training) {
  (void)training;
  std::memcpy(y, x, sizeof(float) * static_cast<std::size_t>(n * shape_size(input_shape())));
}

void Flatten::backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) {
  (void)x;
  (void)y;
  if (dx) std::memcpy(dx, dy, sizeof(float) * static_cast<std::size_t>(n * shape_size(input_shape())));
}

// The public factory (cnnx/layers/flatten.hpp).
std::shared_ptr<Layer> make_flatten(std::string name) { return std::make_shared<Flatten>(std::move(name)); }

}  // namespace cnnx
