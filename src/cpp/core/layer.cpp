#include "cnnx/layer.hpp"

#include "cnnx/error.hpp"

namespace cnnx {

const Shape& Layer::build(const Shape& input_shape, std::uint64_t seed) {
  if (built_) {
    if (input_shape != input_shape_)
      throw ValueError(where() + ": already built for input shape " + shape_str(input_shape_) +
                       ", received " + shape_str(input_shape));
    return output_shape_;
  }
  for (auto d : input_shape)
    if (d <= 0)
      throw ValueError(where() + ": expected an input shape with positive dimensions, received " +
                       shape_str(input_shape));
  Rng rng(seed);
  params_.clear();
  output_shape_ = do_build(input_shape, rng);
  input_shape_ = input_shape;
  built_ = true;
  return output_shape_;
}

std::int64_t Layer::count_params() const {
  std::int64_t n = 0;
  for (const auto& p : params_) n += p.value.size();
  return n;
}

Param& Layer::add_param(const std::string& name, const Shape& shape) {
  params_.emplace_back();
  Param& p = params_.back();
  p.name = name;
  p.value.reshape(shape);
  p.grad.reshape(shape);
  p.value.zero();
  p.grad.zero();
  return p;
}

}  // namespace cnnx
