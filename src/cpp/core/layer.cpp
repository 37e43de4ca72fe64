#include "cnnx/layer.hpp"

#include <algorithm>
#include <cmath>

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

void Layer::set_regularizer(const std::string& weight, double l1, double l2) {
  if (!(l1 >= 0.0) || !(l2 >= 0.0) || !std::isfinite(l1) || !std::isfinite(l2))
    throw ValueError(where() + ": expected non-negative regularization factors, received l1=" + std::to_string(l1) +
                     ", l2=" + std::to_string(l2));
  auto it = std::find_if(regularizers_.begin(), regularizers_.end(), [&](const auto& r) { return r.first == weight; });
  if (it == regularizers_.end()) regularizers_.push_back({weight, {l1, l2}});
  else it->second = {l1, l2};
  for (auto& p : params_)
    if (p.name == weight) p.l1 = l1, p.l2 = l2;
}

Param& Layer::add_param(const std::string& name, const Shape& shape) {
  params_.emplace_back();
  Param& p = params_.back();
  p.name = name;
  for (const auto& r : regularizers_)
    if (r.first == name) p.l1 = r.second.first, p.l2 = r.second.second;
  p.value.reshape(shape);
  p.grad.reshape(shape);
  p.value.zero();
  p.grad.zero();
  return p;
}

}  // namespace cnnx
