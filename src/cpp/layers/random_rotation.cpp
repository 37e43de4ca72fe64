// RandomRotation: one angle per training image, Keras' rotation about the centre
// (image_augmentation.cpp samples it).
#include "layers/random_rotation.hpp"

#include <cmath>

namespace cnnx {

RandomRotation::RandomRotation(std::string name, float lower, float upper, AffineOptions options)
    : RandomAffine(std::move(name), std::move(options), 1), lower_(lower), upper_(upper) {
  check_options();
  check_range("factor", lower_, upper_, -1.0f, 1.0f);
}

void RandomRotation::draw_one(std::int64_t img, float* m) {
  const double two_pi = 6.283185307179586;
  const float angle = static_cast<float>(two_pi * (lower_ + (double(upper_) - lower_) * rng_.uniform_double()));
  params(img)[0] = angle;
  // Keras' _get_rotation_matrix: output (x, y) reads R(angle) (x, y) + offset, which keeps the
  // centre ((w - 1) / 2, (h - 1) / 2) in place.
  const double c = std::cos(double(angle)), s = std::sin(double(angle));
  const double w1 = double(width() - 1), h1 = double(height() - 1);
  m[0] = float(c);
  m[1] = float(-s);
  m[2] = float((w1 - (c * w1 - s * h1)) / 2.0);
  m[3] = float(s);
  m[4] = float(c);
  m[5] = float((h1 - (s * w1 + c * h1)) / 2.0);
  m[6] = m[7] = 0.0f;
}

// The public factory (cnnx/layers/random_rotation.hpp).
std::shared_ptr<Layer> make_random_rotation(std::string name, float lower, float upper, AffineOptions options) {
  return std::make_shared<RandomRotation>(std::move(name), lower, upper, std::move(options));
}

}  // namespace cnnx
