// RandomContrast: one contrast factor per training image, per-channel means, clipped to the
// value range (kernels::contrast_forward / contrast_backward).
#include "layers/random_contrast.hpp"

#include <cmath>
#include <string>

#include "cnnx/error.hpp"
#include "kernels/image.hpp"

namespace cnnx {

RandomContrast::RandomContrast(std::string name, float lower, float upper, float value_min, float value_max,
                               bool has_seed, std::uint64_t seed)
    : ImageAugmentation(std::move(name), has_seed, seed, 1),
      lower_(lower),
      upper_(upper),
      value_min_(value_min),
      value_max_(value_max) {
  if (!(lower_ >= 0.0f && lower_ <= 1.0f && upper_ >= 0.0f && upper_ <= 1.0f))
    throw ValueError(where() + ": expected factor values in [0, 1], received factor=(" + std::to_string(lower_) + ", " +
                     std::to_string(upper_) + ")");
  if (!(std::isfinite(value_min_) && std::isfinite(value_max_) && value_min_ < value_max_))
    throw ValueError(where() + ": expected value_range as finite (min, max) with min < max, received value_range=(" +
                     std::to_string(value_min_) + ", " + std::to_string(value_max_) + ")");
}

void RandomContrast::reserve_extra(std::int64_t batch) {
  const std::int64_t need = checked_mul(batch, channels());
  if (means_.size() < need) {
    means_.resize(need);
    sums_.resize(need);
  }
}

void RandomContrast::draw(std::int64_t n) {
  const double lo = 1.0 - double(lower_), hi = 1.0 + double(upper_);
  for (std::int64_t img = 0; img < n; ++img)
    params(img)[0] = static_cast<float>(lo + (hi - lo) * rng_.uniform_double());
}

void RandomContrast::apply(const float* x, float* y, std::int64_t n) {
  kernels::contrast_forward(x, n, height() * width(), channels(), params(0), value_min_, value_max_, means_.data(), y);
}

void RandomContrast::apply_backward(const float* x, const float* dy, float* dx, std::int64_t n) {
  kernels::contrast_backward(x, dy, n, height() * width(), channels(), params(0), means_.data(), value_min_, value_max_,
                             sums_.data(), dx);
}

// The public factory (cnnx/layers/random_contrast.hpp).
std::shared_ptr<Layer> make_random_contrast(std::string name, float lower, float upper, float value_min,
                                            float value_max, bool has_seed, std::uint64_t seed) {
  return std::make_shared<RandomContrast>(std::move(name), lower, upper, value_min, value_max, has_seed, seed);
}

}  // namespace cnnx
