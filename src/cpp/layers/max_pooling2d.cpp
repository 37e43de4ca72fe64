// MaxPooling2D: geometry and validation here, the loops in kernels/pool.cpp. No weights.
#include "layers/max_pooling2d.hpp"

#include "cnnx/error.hpp"
#include "kernels/pool.hpp"

namespace cnnx {

MaxPooling2D::MaxPooling2D(std::string name, MaxPooling2DConfig config)
    : Layer(std::move(name)), cfg_(std::move(config)) {
  normalize_pooling_config(cfg_, where());
}

Shape MaxPooling2D::do_build(const Shape& in, Rng& rng) {
  (void)rng;
  geom_ = pooling_geometry(cfg_, in, where());
  return {geom_.oh, geom_.ow, geom_.c};
}

void MaxPooling2D::reserve(std::int64_t batch) { argmax_for(batch); }
std::int64_t MaxPooling2D::workspace_floats(std::int64_t batch) const {
  return checked_mul(batch, shape_size(output_shape()));  // one int32 index per output
}

void MaxPooling2D::forward(const float* x, float* y, std::int64_t n, bool training) {
  (void)training;
  kernels::max_pool_forward(x, n, geom_, y, argmax_for(n));
}

void MaxPooling2D::backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) {
  (void)x;
  if (dx) kernels::max_pool_backward(dy, argmax_.data(), n, geom_, dx, fuse_relu_backward_ ? y : nullptr);
}

// The public factory (cnnx/layers/max_pooling2d.hpp).
std::shared_ptr<Layer> make_max_pooling2d(std::string name, MaxPooling2DConfig config) {
  return std::make_shared<MaxPooling2D>(std::move(name), std::move(config));
}

}  // namespace cnnx
