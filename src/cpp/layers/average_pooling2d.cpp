// AveragePooling2D: geometry and validation here, the loops in kernels/pool.cpp. No weights and
// nothing kept between forward and backward (the divisor is recomputed from the geometry).
#include "cnnx/layers/average_pooling2d.hpp"

#include "cnnx/error.hpp"
#include "kernels/pool.hpp"

namespace cnnx {

AveragePooling2D::AveragePooling2D(std::string name, AveragePooling2DConfig config)
    : Layer(std::move(name)), cfg_(std::move(config)) {
  if (cfg_.stride_h == 0) cfg_.stride_h = cfg_.pool_h;
  if (cfg_.stride_w == 0) cfg_.stride_w = cfg_.pool_w;
  auto pair = [](std::int64_t a, std::int64_t b) { return "(" + std::to_string(a) + ", " + std::to_string(b) + ")"; };
  if (cfg_.pool_h <= 0 || cfg_.pool_w <= 0)
    throw ValueError(where() + ": expected positive pool_size, received pool_size=" + pair(cfg_.pool_h, cfg_.pool_w));
  if (cfg_.stride_h <= 0 || cfg_.stride_w <= 0)
    throw ValueError(where() + ": expected positive strides, received strides=" + pair(cfg_.stride_h, cfg_.stride_w));
  if (cfg_.padding != "valid" && cfg_.padding != "same")
    throw ValueError(where() + ": expected padding 'valid' or 'same', received padding='" + cfg_.padding + "'");
}

Shape AveragePooling2D::do_build(const Shape& in, Rng& rng) {
  (void)rng;
  if (in.size() != 3)
    throw ValueError(where() + ": expected input of rank 4 (batch, height, width, channels), received shape " +
                     shape_str([&] { Shape s{-1}; s.insert(s.end(), in.begin(), in.end()); return s; }()));
  auto& g = geom_;
  g = kernels::ConvGeometry{in[0], in[1], in[2], cfg_.pool_h, cfg_.pool_w, cfg_.stride_h, cfg_.stride_w, 1, 1, 0, 0, 0, 0};
  const bool same = cfg_.padding == "same";
  kernels::window_axis(g.h, g.kh, g.sh, 1, same, &g.oh, &g.pad_top);
  kernels::window_axis(g.w, g.kw, g.sw, 1, same, &g.ow, &g.pad_left);
  if (g.oh <= 0 || g.ow <= 0)
    throw ValueError(where() + ": input " + shape_str({-1, g.h, g.w, g.c}) + " is smaller than pool_size (" +
                     std::to_string(g.kh) + ", " + std::to_string(g.kw) + ") with padding='valid'");
  return {g.oh, g.ow, g.c};
}

void AveragePooling2D::forward(const float* x, float* y, std::int64_t n, bool training) {
  (void)training;
  kernels::avg_pool_forward(x, n, geom_, y);
}

void AveragePooling2D::backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) {
  (void)x; (void)y;
  if (dx) kernels::avg_pool_backward(dy, n, geom_, dx);
}

}  // namespace cnnx
