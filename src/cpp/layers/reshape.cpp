// Reshape is a copy, like Flatten: the data is contiguous, only the shape changes, and every
// layer keeps its output in its own buffer (backward relies on it).
#include "layers/reshape.hpp"

#include <cstring>

#include "cnnx/error.hpp"

namespace cnnx {
namespace {

// shape_str prints negative dims as None; here -1 is what the user wrote.
std::string target_str(const Shape& t) {
  std::string s = "(";
  for (std::size_t i = 0; i < t.size(); ++i) s += (i ? ", " : "") + std::to_string(t[i]);
  return s + (t.size() == 1 ? ",)" : ")");
}

}  // namespace

Reshape::Reshape(std::string name, Shape target_shape) : Layer(std::move(name)), target_(std::move(target_shape)) {
  if (target_.empty())
    throw ValueError(where() + ": expected a non-empty target_shape such as (7, 7, 3), received target_shape=()");
  int unknown = 0;
  for (auto d : target_) {
    if (d == -1) {
      ++unknown;
    } else if (d <= 0) {
      throw ValueError(where() + ": expected target_shape dimensions to be positive or -1, received target_shape=" +
                       target_str(target_));
    }
  }
  if (unknown > 1)
    throw ValueError(where() +
                     ": expected at most one -1 in target_shape, received target_shape=" + target_str(target_));
}

Shape Reshape::do_build(const Shape& in, Rng& rng) {
  (void)rng;
  const std::int64_t size = shape_size(in);
  Shape out = target_, known_dims;
  std::int64_t unknown_at = -1;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1)
      unknown_at = static_cast<std::int64_t>(i);
    else
      known_dims.push_back(out[i]);
  }
  const std::int64_t known = shape_size(known_dims);  // > 0: the dims were checked positive
  if (unknown_at >= 0) {
    if (size % known != 0)
      throw ValueError(where() + ": cannot reshape input " + shape_str(in) + " (" + std::to_string(size) +
                       " elements per sample) to target_shape=" + target_str(target_) + ": expected " +
                       std::to_string(size) + " to be divisible by " + std::to_string(known));
    out[static_cast<std::size_t>(unknown_at)] = size / known;
  } else if (known != size) {
    throw ValueError(where() + ": expected target_shape with as many elements as the input " + shape_str(in) + " (" +
                     std::to_string(size) + " per sample), received target_shape=" + target_str(target_) + " (" +
                     std::to_string(known) + " elements)");
  }
  return out;
}

void Reshape::forward(const float* x, float* y, std::int64_t n, bool training) {
  (void)training;
  std::memcpy(y, x, sizeof(float) * static_cast<std::size_t>(n * shape_size(input_shape())));
}

void Reshape::backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) {
  (void)x;
  (void)y;
  if (dx) std::memcpy(dx, dy, sizeof(float) * static_cast<std::size_t>(n * shape_size(input_shape())));
}

// The public factory (cnnx/layers/reshape.hpp).
std::shared_ptr<Layer> make_reshape(std::string name, Shape target_shape) {
  return std::make_shared<Reshape>(std::move(name), std::move(target_shape));
}

}  // namespace cnnx
