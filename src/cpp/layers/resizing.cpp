// Resizing: separable tables built once at build (kernels::resize_axis), then one blend pass per
// call (kernels::resize_forward); backward scatters with the same weights.
#include "layers/resizing.hpp"

#include <algorithm>

#include "cnnx/error.hpp"
#include "kernels/image.hpp"

namespace cnnx {

Resizing::Resizing(std::string name, ResizingConfig config) : Layer(std::move(name)), cfg_(std::move(config)) {
  if (cfg_.height <= 0 || cfg_.width <= 0)
    throw ValueError(where() + ": expected positive height and width, received height=" + std::to_string(cfg_.height) +
                     ", width=" + std::to_string(cfg_.width));
  kernels::parse_interpolation(cfg_.interpolation, where());
}

Shape Resizing::do_build(const Shape& in, Rng& rng) {
  (void)rng;
  if (in.size() != 3)
    throw ValueError(where() + ": expected images of shape (height, width, channels), received input " +
                     batch_shape_str(in));
  const Shape out{cfg_.height, cfg_.width, in[2]};
  check_sample_size(out, "the output shape");  // before the per-row tables below are sized by it
  const std::int64_t h = in[0], w = in[1];
  std::int64_t crop_h = h, crop_w = w, top = 0, left = 0;
  if (cfg_.crop_to_aspect_ratio) {  // Keras' centred crop box with the target aspect ratio
    crop_h =
        std::clamp<std::int64_t>(static_cast<std::int64_t>(double(w) * double(cfg_.height) / double(cfg_.width)), 1, h);
    crop_w =
        std::clamp<std::int64_t>(static_cast<std::int64_t>(double(h) * double(cfg_.width) / double(cfg_.height)), 1, w);
    top = static_cast<std::int64_t>(double(h - crop_h) / 2.0);
    left = static_cast<std::int64_t>(double(w - crop_w) / 2.0);
  }
  const auto interp = kernels::parse_interpolation(cfg_.interpolation, where());
  row_lo_.assign(cfg_.height, 0);
  row_hi_.assign(cfg_.height, 0);
  row_frac_.assign(cfg_.height, 0.0f);
  col_lo_.assign(cfg_.width, 0);
  col_hi_.assign(cfg_.width, 0);
  col_frac_.assign(cfg_.width, 0.0f);
  kernels::resize_axis(top, crop_h, cfg_.height, interp, {row_lo_.data(), row_hi_.data(), row_frac_.data()});
  kernels::resize_axis(left, crop_w, cfg_.width, interp, {col_lo_.data(), col_hi_.data(), col_frac_.data()});
  return out;
}

void Resizing::forward(const float* x, float* y, std::int64_t n, bool training) {
  (void)training;
  const Shape& in = input_shape();
  kernels::resize_forward(x, n, in[0], in[1], in[2], {row_lo_.data(), row_hi_.data(), row_frac_.data()}, cfg_.height,
                          {col_lo_.data(), col_hi_.data(), col_frac_.data()}, cfg_.width, y);
}

void Resizing::backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) {
  (void)x;
  (void)y;
  if (!dx) return;
  const Shape& in = input_shape();
  kernels::resize_backward(dy, n, in[0], in[1], in[2], {row_lo_.data(), row_hi_.data(), row_frac_.data()}, cfg_.height,
                           {col_lo_.data(), col_hi_.data(), col_frac_.data()}, cfg_.width, dx);
}

// The public factory (cnnx/layers/resizing.hpp).
std::shared_ptr<Layer> make_resizing(std::string name, ResizingConfig config) {
  return std::make_shared<Resizing>(std::move(name), std::move(config));
}

}  // namespace cnnx
