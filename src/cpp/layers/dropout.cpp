// Dropout forward and backward. Training: draw the scaled mask (kernels::dropout_mask, chunked
// seeded streams, so the same seed gives the same mask on any thread count), y = x * mask;
// backward dx = dy * mask. With a noise_shape the mask is drawn at the noise shape and
// broadcast to the input once per call, so backward stays one multiply. Inference: a copy.
// Workspaces (mask, noise) are sized by reserve() and only grow.
#include "layers/dropout.hpp"

#include <cmath>
#include <cstring>

#include "cnnx/error.hpp"
#include "kernels/elementwise.hpp"

namespace cnnx {
namespace {

// noise_shape as the caller wrote it: -1 (the input's size) stays -1, where shape_str would
// print a negative size as Keras' None.
std::string noise_shape_str(const Shape& dims) {
  std::string s = "(";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + (dims.size() == 1 ? ",)" : ")");
}

}  // namespace

Dropout::Dropout(std::string name, DropoutConfig config) : Layer(std::move(name)), cfg_(std::move(config)) {
  if (!(cfg_.rate >= 0.0f && cfg_.rate < 1.0f))
    throw ValueError(where() + ": expected rate to be a float in [0, 1), received rate=" + std::to_string(cfg_.rate));
  for (auto d : cfg_.noise_shape)
    if (d != -1 && d <= 0)
      throw ValueError(where() +
                       ": expected noise_shape entries to be positive or -1 (the input's size), received noise_shape=" +
                       noise_shape_str(cfg_.noise_shape));
}

Shape Dropout::do_build(const Shape& in, Rng& rng) {
  rng_.seed_with(cfg_.has_seed ? cfg_.seed : rng.next_u64());
  noise_dims_.clear();
  noise_size_ = shape_size(in);
  if (!cfg_.noise_shape.empty()) {
    const Shape& ns = cfg_.noise_shape;
    if (ns.size() != in.size() + 1)
      throw ValueError(where() + ": expected noise_shape of rank " + std::to_string(in.size() + 1) +
                       " (batch included) for input " + batch_shape_str(in) +
                       ", received noise_shape=" + noise_shape_str(ns));
    for (std::size_t i = 0; i < in.size(); ++i) {
      const std::int64_t d = ns[i + 1];
      if (d != -1 && d != 1 && d != in[i])
        throw ValueError(where() + ": expected noise_shape entry " + std::to_string(i + 1) + " to be -1, 1 or " +
                         std::to_string(in[i]) + " (the input's size), received noise_shape=" + noise_shape_str(ns));
      noise_dims_.push_back(d == -1 ? in[i] : d);
    }
    noise_size_ = shape_size(noise_dims_);
    full_.assign(in.size() + 1, 0);
    stride_.assign(in.size() + 1, 0);
    idx_.assign(in.size() + 1, 0);
  }
  return in;
}

std::int64_t Dropout::noise_batch(std::int64_t n) const {
  const std::int64_t b = cfg_.noise_shape.empty() ? -1 : cfg_.noise_shape[0];
  if (b == 1) return 1;
  if (b != -1 && b != n)
    throw ValueError(where() + ": noise_shape=" + noise_shape_str(cfg_.noise_shape) + " expects batches of " +
                     std::to_string(b) + " (or -1 / 1 for any batch), received a batch of " + std::to_string(n));
  return n;
}

void Dropout::ensure_workspace(std::int64_t n) {
  const std::int64_t size = checked_mul(n, shape_size(input_shape())), noise = checked_mul(n, noise_size_);
  if (mask_.size() < size) mask_.resize(size);
  if (!noise_dims_.empty() && noise_.size() < noise) noise_.resize(noise);
}

void Dropout::reserve(std::int64_t batch) { ensure_workspace(batch); }
std::int64_t Dropout::workspace_floats(std::int64_t batch) const {
  const std::int64_t mask = checked_mul(batch, shape_size(input_shape()));
  return noise_dims_.empty() ? mask : checked_add(mask, checked_mul(batch, noise_size_));
}

// mask[i0, i1, ...] = noise[i0 or 0, i1 or 0, ...]: an odometer over every axis but the last,
// with stride 0 along the axes where the noise has size 1.
void Dropout::expand_noise(std::int64_t n) {
  // full_, stride_, idx_ were sized at build: filling them here allocates nothing.
  const Shape& in = input_shape();
  full_[0] = n;
  for (std::size_t d = 0; d < in.size(); ++d) full_[d + 1] = in[d];
  std::int64_t s = 1;
  for (std::size_t d = full_.size(); d-- > 0;) {
    const std::int64_t nd = d == 0 ? noise_batch(n) : noise_dims_[d - 1];
    stride_[d] = nd == 1 ? 0 : s;
    s *= nd;
    idx_[d] = 0;
  }
  const std::size_t last = full_.size() - 1;
  const std::int64_t cols = full_[last], rows = n * shape_size(in) / cols, cs = stride_[last];
  std::int64_t base = 0;
  const float* src = noise_.data();
  float* dst = mask_.data();
  for (std::int64_t r = 0; r < rows; ++r) {
    float* row = dst + r * cols;
    for (std::int64_t j = 0; j < cols; ++j) row[j] = src[base + j * cs];
    for (std::size_t d = last; d-- > 0;) {  // advance the odometer
      base += stride_[d];
      if (++idx_[d] < full_[d]) break;
      base -= stride_[d] * full_[d];
      idx_[d] = 0;
    }
  }
}

void Dropout::forward(const float* x, float* y, std::int64_t n, bool training) {
  const std::int64_t size = n * shape_size(input_shape());
  masked_ = training && cfg_.rate > 0.0f;
  if (!masked_) {
    std::memcpy(y, x, sizeof(float) * static_cast<std::size_t>(size));
    return;
  }
  const float scale = 1.0f / (1.0f - cfg_.rate);
  const std::uint64_t seed = rng_.next_u64();
  ensure_workspace(n);
  if (noise_dims_.empty()) {
    kernels::dropout_mask(mask_.data(), size, cfg_.rate, scale, seed);
  } else {
    kernels::dropout_mask(noise_.data(), noise_batch(n) * noise_size_, cfg_.rate, scale, seed);
    expand_noise(n);
  }
  kernels::multiply(x, mask_.data(), y, size);
}

void Dropout::backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) {
  (void)x;
  (void)y;
  if (!dx) return;
  const std::int64_t size = n * shape_size(input_shape());
  if (masked_)
    kernels::multiply(dy, mask_.data(), dx, size);
  else
    std::memcpy(dx, dy, sizeof(float) * static_cast<std::size_t>(size));
}

// The public factory (cnnx/layers/dropout.hpp).
std::shared_ptr<Layer> make_dropout(std::string name, DropoutConfig config) {
  return std::make_shared<Dropout>(std::move(name), std::move(config));
}

}  // namespace cnnx
