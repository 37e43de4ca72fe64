// RandomZoom: one (zh, zw) scale per training image about the centre (image_augmentation.cpp
// samples it).
#include "layers/random_zoom.hpp"

namespace cnnx {

RandomZoom::RandomZoom(std::string name, float height_lower, float height_upper, bool has_width, float width_lower,
                       float width_upper, AffineOptions options)
    : RandomAffine(std::move(name), std::move(options), 2),
      h_lo_(height_lower),
      h_hi_(height_upper),
      has_width_(has_width),
      w_lo_(width_lower),
      w_hi_(width_upper) {
  check_options();
  check_range("height_factor", h_lo_, h_hi_, -1.0f, 1.0f);
  if (has_width_) check_range("width_factor", w_lo_, w_hi_, -1.0f, 1.0f);
}

void RandomZoom::draw_one(std::int64_t img, float* m) {
  const float zh = static_cast<float>(1.0 + h_lo_ + (double(h_hi_) - h_lo_) * rng_.uniform_double());
  const float zw = has_width_ ? static_cast<float>(1.0 + w_lo_ + (double(w_hi_) - w_lo_) * rng_.uniform_double()) : zh;
  params(img)[0] = zh;
  params(img)[1] = zw;
  const float t[8] = {zw,   0.0f, float(double(width() - 1) / 2.0 * (1.0 - zw)),
                      0.0f, zh,   float(double(height() - 1) / 2.0 * (1.0 - zh)),
                      0.0f, 0.0f};
  for (int i = 0; i < 8; ++i) m[i] = t[i];
}

// The public factory (cnnx/layers/random_zoom.hpp).
std::shared_ptr<Layer> make_random_zoom(std::string name, float height_lower, float height_upper, bool has_width,
                                        float width_lower, float width_upper, AffineOptions options) {
  return std::make_shared<RandomZoom>(std::move(name), height_lower, height_upper, has_width, width_lower, width_upper,
                                      std::move(options));
}

}  // namespace cnnx
