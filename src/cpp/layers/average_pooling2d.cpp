// AveragePooling2D: geometry and validation here, the loops in kernels/pool.cpp. No weights and
// nothing kept between forward and backward (the divisor is recomputed from the geometry).
#include "layers/average_pooling2d.hpp"

#include "cnnx/error.hpp"
#include "kernels/pool.hpp"

namespace cnnx {

AveragePooling2D::AveragePooling2D(std::string name, AveragePooling2DConfig config)
    : Layer(std::move(name)), cfg_(std::move(config)) {
  normalize_pooling_config(cfg_, where());
}

Shape AveragePooling2D::do_build(const Shape& in, Rng& rng) {
  (void)rng;
  geom_ = pooling_geometry(cfg_, in, where());
  return {geom_.oh, geom_.ow, geom_.c};
}

void AveragePooling2D::forward(const float* x, float* y, std::int64_t n, bool training) {
  (void)training;
  kernels::avg_pool_forward(x, n, geom_, y);
}

void AveragePooling2D::backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) {
  (void)x;
  (void)y;
  if (dx) kernels::avg_pool_backward(dy, n, geom_, dx);
}

// The public factory (cnnx/layers/average_pooling2d.hpp).
std::shared_ptr<Layer> make_average_pooling2d(std::string name, AveragePooling2DConfig config) {
  return std::make_shared<AveragePooling2D>(std::move(name), std::move(config));
}

}  // namespace cnnx
