// The random image layers' shared machinery (see image_augmentation.hpp): seeding, the
// training / inference switch, per-image parameter storage, and the projective-transform path
// of RandomRotation / RandomTranslation / RandomZoom (kernels/image.cpp). Workspaces are sized
// by reserve() and only grow, so a steady training loop allocates nothing.
#include "layers/image_augmentation.hpp"

#include <cmath>
#include <cstring>

#include "cnnx/error.hpp"
#include "kernels/image.hpp"

namespace cnnx {

namespace {
std::string num(float v) {
  std::string s = std::to_string(v);
  s.erase(s.find_last_not_of('0') + 1);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}
}  // namespace

ImageAugmentation::ImageAugmentation(std::string name, bool has_seed, std::uint64_t seed, int per_image)
    : Layer(std::move(name)), has_seed_(has_seed), seed_(seed), per_image_(per_image) {}

Shape ImageAugmentation::do_build(const Shape& in, Rng& rng) {
  if (in.size() != 3)
    throw ValueError(where() + ": expected images of shape (height, width, channels), received input " +
                     batch_shape_str(in));
  rng_.seed_with(has_seed_ ? seed_ : rng.next_u64());
  return in;
}

void ImageAugmentation::reserve(std::int64_t batch) {
  const std::int64_t need = checked_mul(batch, per_image_);
  if (static_cast<std::int64_t>(params_.size()) < need) params_.resize(static_cast<std::size_t>(need));
  reserve_extra(batch);
}

void ImageAugmentation::forward(const float* x, float* y, std::int64_t n, bool training) {
  active_ = training;
  if (!training) {
    std::memcpy(y, x, sizeof(float) * static_cast<std::size_t>(n * shape_size(input_shape())));
    return;
  }
  reserve(n);  // a no-op once the model has reserved its batch
  last_n_ = n;
  draw(n);
  apply(x, y, n);
}

void ImageAugmentation::backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) {
  (void)y;
  if (!dx) return;
  if (!active_) {
    std::memcpy(dx, dy, sizeof(float) * static_cast<std::size_t>(n * shape_size(input_shape())));
    return;
  }
  if (n != last_n_)
    throw ValueError(where() + ": backward expects the batch of the last training forward (" + std::to_string(last_n_) +
                     " images), received " + std::to_string(n));
  apply_backward(x, dy, dx, n);
}

RandomAffine::RandomAffine(std::string name, AffineOptions options, int per_image)
    : ImageAugmentation(std::move(name), options.has_seed, options.seed, per_image), options_(std::move(options)) {}

// Not in the constructor: where() calls the virtual class_name(), not final until the subclass
// constructor runs.
void RandomAffine::check_options() {
  spec_.fill_mode = kernels::parse_fill_mode(options_.fill_mode, where());
  spec_.interpolation = kernels::parse_interpolation(options_.interpolation, where());
  if (!std::isfinite(options_.fill_value))
    throw ValueError(where() + ": expected a finite fill_value, received fill_value=" + num(options_.fill_value));
  spec_.fill_value = options_.fill_value;
}

void RandomAffine::check_range(const std::string& arg, float lo, float hi, float min, float max) const {
  const std::string got = ", received " + arg + "=(" + num(lo) + ", " + num(hi) + ")";
  if (!(lo >= min && hi <= max))
    throw ValueError(where() + ": expected " + arg + " values in [" + num(min) + ", " + num(max) + "]" + got);
  if (!(lo <= hi)) throw ValueError(where() + ": expected " + arg + " as (lower, upper) with lower <= upper" + got);
}

void RandomAffine::reserve_extra(std::int64_t batch) {
  const std::int64_t need = checked_mul(8, batch);
  if (static_cast<std::int64_t>(transforms_.size()) < need) transforms_.resize(static_cast<std::size_t>(need));
}

void RandomAffine::draw(std::int64_t n) {
  for (std::int64_t img = 0; img < n; ++img) draw_one(img, transforms_.data() + 8 * img);
}

void RandomAffine::apply(const float* x, float* y, std::int64_t n) {
  kernels::affine_transform(x, n, height(), width(), channels(), transforms_.data(), spec_, y);
}

void RandomAffine::apply_backward(const float* x, const float* dy, float* dx, std::int64_t n) {
  (void)x;
  kernels::affine_transform_backward(dy, n, height(), width(), channels(), transforms_.data(), spec_, dx);
}

}  // namespace cnnx
