// RandomFlip: per training image, a left-right and a top-bottom coin (kernels::flip).
#include "layers/random_flip.hpp"

#include "cnnx/error.hpp"
#include "kernels/image.hpp"

namespace cnnx {

RandomFlip::RandomFlip(std::string name, std::string mode, bool has_seed, std::uint64_t seed)
    : ImageAugmentation(std::move(name), has_seed, seed, 2), mode_(std::move(mode)) {
  horizontal_ = mode_ == "horizontal" || mode_ == "horizontal_and_vertical";
  vertical_ = mode_ == "vertical" || mode_ == "horizontal_and_vertical";
  if (!horizontal_ && !vertical_)
    throw ValueError(where() +
                     ": expected mode to be 'horizontal', 'vertical' or 'horizontal_and_vertical', received mode='" +
                     mode_ + "'");
}

void RandomFlip::draw(std::int64_t n) {
  for (std::int64_t img = 0; img < n; ++img) {
    float* p = params(img);
    p[0] = horizontal_ && rng_.uniform() < 0.5f ? 1.0f : 0.0f;
    p[1] = vertical_ && rng_.uniform() < 0.5f ? 1.0f : 0.0f;
  }
}

void RandomFlip::apply(const float* x, float* y, std::int64_t n) {
  kernels::flip(x, n, height(), width(), channels(), params(0), y);
}

void RandomFlip::apply_backward(const float* x, const float* dy, float* dx, std::int64_t n) {
  (void)x;
  kernels::flip(dy, n, height(), width(), channels(), params(0), dx);
}

// The public factory (cnnx/layers/random_flip.hpp).
std::shared_ptr<Layer> make_random_flip(std::string name, std::string mode, bool has_seed, std::uint64_t seed) {
  return std::make_shared<RandomFlip>(std::move(name), std::move(mode), has_seed, seed);
}

}  // namespace cnnx
