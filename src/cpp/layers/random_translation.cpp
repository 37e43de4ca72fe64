// RandomTranslation: one (dy, dx) shift per training image (image_augmentation.cpp samples it).
#include "layers/random_translation.hpp"

namespace cnnx {

RandomTranslation::RandomTranslation(std::string name, float height_lower, float height_upper, float width_lower,
                                     float width_upper, AffineOptions options)
    : RandomAffine(std::move(name), std::move(options), 2),
      h_lo_(height_lower),
      h_hi_(height_upper),
      w_lo_(width_lower),
      w_hi_(width_upper) {
  check_options();
  check_range("height_factor", h_lo_, h_hi_, -1.0f, 1.0f);
  check_range("width_factor", w_lo_, w_hi_, -1.0f, 1.0f);
}

void RandomTranslation::draw_one(std::int64_t img, float* m) {
  const float dy = static_cast<float>((h_lo_ + (double(h_hi_) - h_lo_) * rng_.uniform_double()) * double(height()));
  const float dx = static_cast<float>((w_lo_ + (double(w_hi_) - w_lo_) * rng_.uniform_double()) * double(width()));
  params(img)[0] = dy;
  params(img)[1] = dx;
  const float t[8] = {1.0f, 0.0f, -dx, 0.0f, 1.0f, -dy, 0.0f, 0.0f};
  for (int i = 0; i < 8; ++i) m[i] = t[i];
}

// The public factory (cnnx/layers/random_translation.hpp).
std::shared_ptr<Layer> make_random_translation(std::string name, float height_lower, float height_upper,
                                               float width_lower, float width_upper, AffineOptions options) {
  return std::make_shared<RandomTranslation>(std::move(name), height_lower, height_upper, width_lower, width_upper,
                                             std::move(options));
}

}  // namespace cnnx
