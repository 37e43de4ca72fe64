// Rescaling forward y = x * scale + offset, backward dx = dy * scale (kernels/elementwise.cpp).
#include "layers/rescaling.hpp"

#include <cmath>

#include "cnnx/error.hpp"
#include "kernels/elementwise.hpp"

namespace cnnx {

Rescaling::Rescaling(std::string name, float scale, float offset)
    : Layer(std::move(name)), scale_(scale), offset_(offset) {
  if (!std::isfinite(scale_))
    throw ValueError(where() + ": expected a finite scale, received scale=" + std::to_string(scale_));
  if (!std::isfinite(offset_))
    throw ValueError(where() + ": expected a finite offset, received offset=" + std::to_string(offset_));
}

Shape Rescaling::do_build(const Shape& in, Rng& rng) {
  (void)rng;
  return in;
}

void Rescaling::forward(const float* x, float* y, std::int64_t n, bool training) {
  (void)training;
  kernels::scale_offset(x, y, n * shape_size(input_shape()), scale_, offset_);
}

void Rescaling::backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) {
  (void)x;
  (void)y;
  if (dx) kernels::scale_offset(dy, dx, n * shape_size(input_shape()), scale_, 0.0f);
}

// The public factory (cnnx/layers/rescaling.hpp).
std::shared_ptr<Layer> make_rescaling(std::string name, float scale, float offset) {
  return std::make_shared<Rescaling>(std::move(name), scale, offset);
}

}  // namespace cnnx
