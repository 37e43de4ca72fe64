#include "cnnx/tensor.hpp"

#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <sstream>

#include "cnnx/error.hpp"

namespace cnnx {

namespace {
constexpr std::int64_t kMaxInt64 = std::numeric_limits<std::int64_t>::max();
}

std::int64_t checked_mul(std::int64_t a, std::int64_t b) {
  if (a < 0 || b < 0)
    throw SizeError("size arithmetic: expected non-negative sizes, received " + std::to_string(a) + " * " +
                    std::to_string(b));
  if (b != 0 && a > kMaxInt64 / b)
    throw SizeError("size arithmetic: " + std::to_string(a) + " * " + std::to_string(b) + " exceeds " +
                    std::to_string(kMaxInt64));
  return a * b;
}

std::int64_t checked_add(std::int64_t a, std::int64_t b) {
  if (a < 0 || b < 0)
    throw SizeError("size arithmetic: expected non-negative sizes, received " + std::to_string(a) + " + " +
                    std::to_string(b));
  if (a > kMaxInt64 - b)
    throw SizeError("size arithmetic: " + std::to_string(a) + " + " + std::to_string(b) + " exceeds " +
                    std::to_string(kMaxInt64));
  return a + b;
}

std::int64_t shape_size(const Shape& shape) {
  std::int64_t n = 1;
  for (auto d : shape) {
    if (d < 0) throw SizeError("shape " + shape_str(shape) + " has a negative dimension");
    if (d != 0 && n > kMaxInt64 / d)
      throw SizeError("shape " + shape_str(shape) + " has more elements than " + std::to_string(kMaxInt64));
    n *= d;
  }
  return n;
}

void check_sample_size(const Shape& sample, const char* what) {
  std::int64_t n = 0;
  try {
    n = shape_size(sample);
  } catch (const SizeError&) {
    throw SizeError(std::string(what) + " " + batch_shape_str(sample) + " has more elements per sample than " +
                    std::to_string(kMaxInt64));
  }
  if (n > kMaxSampleElements)
    throw SizeError(std::string(what) + " " + batch_shape_str(sample) + " has " + std::to_string(n) +
                    " elements per sample, more than the " + std::to_string(kMaxSampleElements) +
                    " (2**31 - 1) a sample may hold");
}

std::string shape_str(const std::vector<std::int64_t>& dims) {
  std::ostringstream os;
  os << "(";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) os << ", ";
    if (dims[i] < 0)
      os << "None";
    else
      os << dims[i];
  }
  if (dims.size() == 1) os << ",";
  os << ")";
  return os.str();
}

Shape with_batch(std::int64_t n, const Shape& sample) {
  Shape dims{n};
  dims.insert(dims.end(), sample.begin(), sample.end());
  return dims;
}

std::string batch_shape_str(const std::vector<std::int64_t>& sample) { return shape_str(with_batch(-1, sample)); }

void detail::BufferFree::operator()(float* p) const {
  if (owned) std::free(p);
}

void Buffer::alias(Buffer& other) {
  data_ = std::unique_ptr<float, Free>(other.data_.get(), Free{false});
  size_ = other.size_;
  capacity_ = other.size_;
}

void Buffer::resize(std::int64_t n) {
  if (n < 0) throw SizeError("Buffer: expected a non-negative size, received " + std::to_string(n));
  if (n > kMaxBufferElements)
    throw AllocationError("cannot allocate " + std::to_string(n) + " floats: more than " +
                          std::to_string(kMaxBufferElements) + " do not fit in a 64-bit byte count");
  if (n > capacity_) {
    if (is_view())
      throw ValueError("Buffer: a view of " + std::to_string(capacity_) + " floats cannot grow to " +
                       std::to_string(n));
    // Round up to whole cache lines; aligned_alloc requires a multiple of the alignment.
    const std::int64_t bytes = (n * static_cast<std::int64_t>(sizeof(float)) + 63) / 64 * 64;
    void* p = static_cast<std::uint64_t>(bytes) <= std::numeric_limits<std::size_t>::max()
                  ? std::aligned_alloc(64, static_cast<std::size_t>(bytes))
                  : nullptr;
    if (!p)
      throw AllocationError("cannot allocate " + std::to_string(bytes) + " bytes (" + std::to_string(n) + " floats)");
    if (size_ > 0) std::memcpy(p, data_.get(), static_cast<std::size_t>(size_) * sizeof(float));
    data_ = std::unique_ptr<float, Free>(static_cast<float*>(p), Free{true});
    capacity_ = n;
  }
  size_ = n;
}

Buffer& Buffer::operator=(const Buffer& other) {
  if (this == &other) return *this;
  resize(other.size_);
  if (size_ > 0) std::memcpy(data_.get(), other.data_.get(), static_cast<std::size_t>(size_) * sizeof(float));
  return *this;
}

void Buffer::zero() {
  if (size_ > 0) std::memset(data_.get(), 0, static_cast<std::size_t>(size_) * sizeof(float));
}

}  // namespace cnnx
