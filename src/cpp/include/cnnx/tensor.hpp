// Shape and Tensor: contiguous, 64-byte aligned float32 storage.
// Activations are NHWC (channels-last) everywhere in cnnx; a Shape never includes the batch
// dimension unless the name says so (layers reason about one sample, the batch is a loop count).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "cnnx/export.hpp"

namespace cnnx {

using Shape = std::vector<std::int64_t>;

// Size arithmetic. Every element count the core derives from user-given dims goes through
// these, so a shape that cannot exist is refused (cnnx::SizeError, a ValueError) instead of
// wrapping around into a small buffer and a crash.
//
// One sample's activation (a layer's per-sample input or output) holds at most
// kMaxSampleElements = 2**31 - 1 floats (8 GiB): the pooling kernels keep argmax offsets
// within a sample as int32, and no CPU-trained model comes near it. Layer::build refuses a
// larger shape with a ValueError naming the layer. Weights are bounded only by int64 and memory.
// The per-batch products in forward / backward (n * a sample's size) are not checked again:
// reserve() computed them checked for the largest batch before any buffer of that size existed.
constexpr std::int64_t kMaxSampleElements = 2147483647;
// The most floats one Buffer can hold: its byte count, rounded up to a cache line, fits int64.
constexpr std::int64_t kMaxBufferElements = (INT64_MAX - 63) / 4;

CNNX_API std::int64_t checked_mul(std::int64_t a, std::int64_t b);  // a, b >= 0; SizeError on overflow
CNNX_API std::int64_t checked_add(std::int64_t a, std::int64_t b);  // a, b >= 0; SizeError on overflow
// Product of dims (1 for a scalar); SizeError for a negative dim or an int64 overflow.
CNNX_API std::int64_t shape_size(const Shape& shape);
// SizeError unless shape_size(sample) <= kMaxSampleElements; `what` names it in the message
// ("output shape").
CNNX_API void check_sample_size(const Shape& sample, const char* what);
CNNX_API Shape with_batch(std::int64_t n, const Shape& sample);  // {n, sample...}; n = -1 prints as None

namespace detail {
// Frees a Buffer's storage unless the buffer is a view (Buffer::alias).
struct CNNX_API BufferFree {
  bool owned = true;
  void operator()(float* p) const;
};
}  // namespace detail

// A grow-only float buffer, 64-byte aligned so AVX-512 loads never split cache lines.
// resize() keeps the allocation when it shrinks, so workspaces sized once are reused; a refused
// allocation throws AllocationError (a std::bad_alloc naming the bytes).
class CNNX_API Buffer {
 public:
  Buffer() = default;
  explicit Buffer(std::int64_t n) { resize(n); }
  Buffer(const Buffer& other) { *this = other; }  // deep copy
  Buffer& operator=(const Buffer& other);
  Buffer(Buffer&&) noexcept = default;
  Buffer& operator=(Buffer&&) noexcept = default;
  void resize(std::int64_t n);
  void zero();
  // Makes this buffer a view of `other`'s storage (no ownership): weights a layer shares with
  // its clones (Layer::clone). The view cannot grow; `other` must outlive it and never reallocate.
  void alias(Buffer& other);
  bool is_view() const { return !data_.get_deleter().owned; }
  float* data() { return data_.get(); }
  const float* data() const { return data_.get(); }
  std::int64_t size() const { return size_; }

 private:
  using Free = detail::BufferFree;
  std::unique_ptr<float, Free> data_;
  std::int64_t size_ = 0;
  std::int64_t capacity_ = 0;
};

// A Buffer with a shape. Parameters, gradients and optimizer slots are Tensors.
class CNNX_API Tensor {
 public:
  Tensor() = default;
  explicit Tensor(Shape shape) { reshape(std::move(shape)); }
  void reshape(Shape shape) {
    shape_ = std::move(shape);
    buf_.resize(shape_size(shape_));
  }
  const Shape& shape() const { return shape_; }
  std::int64_t size() const { return buf_.size(); }
  float* data() { return buf_.data(); }
  const float* data() const { return buf_.data(); }
  void zero() { buf_.zero(); }
  // A view of `other`'s storage with its shape (Buffer::alias).
  void alias(Tensor& other) {
    shape_ = other.shape_;
    buf_.alias(other.buf_);
  }
  bool is_view() const { return buf_.is_view(); }

 private:
  Shape shape_;
  Buffer buf_;
};

}  // namespace cnnx
