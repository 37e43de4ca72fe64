#include "cnnx/tensor.hpp"

#include <cstdlib>
#include <cstring>
#include <new>
#include <sstream>

#include "cnnx/error.hpp"

namespace cnnx {

std::int64_t shape_size(const Shape& shape) {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

std::string shape_str(const std::vector<std::int64_t>& dims) {
  std::ostringstream os;
  os << "(";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) os << ", ";
    if (dims[i] < 0) os << "None"; else os << dims[i];
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

void Buffer::Free::operator()(float* p) const { std::free(p); }

void Buffer::resize(std::int64_t n) {
  if (n < 0) throw ValueError("Buffer: negative size");
  if (n > capacity_) {
    // Round up to whole cache lines; aligned_alloc requires a multiple of the alignment.
    std::size_t bytes = (static_cast<std::size_t>(n) * sizeof(float) + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, bytes);
    if (!p) throw std::bad_alloc();
    if (size_ > 0) std::memcpy(p, data_.get(), static_cast<std::size_t>(size_) * sizeof(float));
    data_.reset(static_cast<float*>(p));
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
