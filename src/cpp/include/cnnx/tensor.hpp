// Shape and Tensor: contiguous, 64-byte aligned float32 storage.
// Activations are NHWC (channels-last) everywhere in cnnx; a Shape never includes the batch
// dimension unless the name says so (layers reason about one sample, the batch is a loop count).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace cnnx {

using Shape = std::vector<std::int64_t>;

std::int64_t shape_size(const Shape& shape);  // product of dims; 1 for a scalar
Shape with_batch(std::int64_t n, const Shape& sample);  // {n, sample...}; n = -1 prints as None

// A grow-only float buffer, 64-byte aligned so AVX-512 loads never split cache lines.
// resize() keeps the allocation when it shrinks, so workspaces sized once are reused.
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(std::int64_t n) { resize(n); }
  Buffer(const Buffer& other) { *this = other; }  // deep copy
  Buffer& operator=(const Buffer& other);
  Buffer(Buffer&&) noexcept = default;
  Buffer& operator=(Buffer&&) noexcept = default;
  void resize(std::int64_t n);
  void zero();
  float* data() { return data_.get(); }
  const float* data() const { return data_.get(); }
  std::int64_t size() const { return size_; }

 private:
  struct Free {
    void operator()(float* p) const;
  };
  std::unique_ptr<float, Free> data_;
  std::int64_t size_ = 0;
  std::int64_t capacity_ = 0;
};

// A Buffer with a shape. Parameters, gradients and optimizer slots are Tensors.
class Tensor {
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

 private:
  Shape shape_;
  Buffer buf_;
};

}  // namespace cnnx
