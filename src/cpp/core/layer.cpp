#include "cnnx/layer.hpp"

#include <algorithm>
#include <cmath>

#include "cnnx/error.hpp"

namespace cnnx {

const Shape& Layer::build(const Shape& input_shape, std::uint64_t seed, std::int64_t max_param_floats) {
  return build(std::vector<Shape>{input_shape}, seed, max_param_floats);
}

const Shape& Layer::build(const std::vector<Shape>& input_shapes, std::uint64_t seed, std::int64_t max_param_floats) {
  const int count = static_cast<int>(input_shapes.size());
  if (count < min_inputs() || (max_inputs() >= 0 && count > max_inputs())) {
    std::string expected = min_inputs() == max_inputs() ? std::to_string(min_inputs())
                           : max_inputs() < 0 ? "at least " + std::to_string(min_inputs())
                                              : std::to_string(min_inputs()) + " to " + std::to_string(max_inputs());
    const bool one = max_inputs() == 1 || (min_inputs() == 1 && max_inputs() < 0);  // "at least 1 input"
    throw ValueError(where() + ": expected " + expected + (one ? " input" : " inputs") + ", received " +
                     std::to_string(count));
  }
  if (built_) {
    if (input_shapes != input_shapes_) {
      std::string have, got;
      for (std::size_t i = 0; i < input_shapes_.size(); ++i) have += (i ? ", " : "") + shape_str(input_shapes_[i]);
      for (std::size_t i = 0; i < input_shapes.size(); ++i) got += (i ? ", " : "") + shape_str(input_shapes[i]);
      throw ValueError(where() + ": already built for input shape " + have + ", received " + got);
    }
    return output_shape_;
  }
  for (const auto& shape : input_shapes)
    for (auto d : shape)
      if (d <= 0)
        throw ValueError(where() + ": expected an input shape with positive dimensions, received " + shape_str(shape));
  Rng rng(seed);
  params_.clear();
  max_param_floats_ = max_param_floats;
  // Size errors are raised deep in shape arithmetic, where the layer is unknown; they get the
  // layer's name here. A failed build leaves no weights behind.
  try {
    for (const auto& shape : input_shapes) check_sample_size(shape, "the input shape");
    Shape out = do_build_inputs(input_shapes, rng);
    check_sample_size(out, "the output shape");
    output_shape_ = std::move(out);
  } catch (const SizeError& e) {
    params_.clear();
    throw ValueError(where() + ": " + e.what());
  } catch (const AllocationError& e) {
    params_.clear();
    throw AllocationError(where() + ": " + e.what());
  } catch (...) {
    params_.clear();
    throw;
  }
  input_shapes_ = input_shapes;
  built_ = true;
  return output_shape_;
}

bool Layer::computes_weight_grads() const {
  if (!trainable_) return false;
  for (const auto& p : params_)
    if (p.trainable) return true;
  return false;
}

void Layer::alias_gradients_of(Layer& source) {
  for (std::size_t i = 0; i < params_.size() && i < source.params_.size(); ++i)
    params_[i].grad.alias(source.params_[i].grad);
}

void Layer::alias_params_of(const Layer& source) {
  auto& from = const_cast<Layer&>(source).params_;
  for (std::size_t i = 0; i < params_.size() && i < from.size(); ++i) params_[i].value.alias(from[i].value);
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
  if (it == regularizers_.end())
    regularizers_.push_back({weight, {l1, l2}});
  else
    it->second = {l1, l2};
  for (auto& p : params_)
    if (p.name == weight) p.l1 = l1, p.l2 = l2;
}

Param& Layer::add_param(const std::string& name, const Shape& shape) {
  std::int64_t size = 0;
  try {
    size = shape_size(shape);
  } catch (const SizeError&) {
    size = -1;
  }
  if (size < 0 || size > kMaxBufferElements)
    throw SizeError("the " + name + " of shape " + shape_str(shape) + " has more elements than the " +
                    std::to_string(kMaxBufferElements) + " a tensor can hold");
  if (max_param_floats_ >= 0) {
    const std::int64_t left = max_param_floats_ - count_params();
    if (size > left)
      throw ValueError(where() + ": the " + name + " of shape " + shape_str(shape) + " has " + std::to_string(size) +
                       " elements, more than the " + std::to_string(std::max<std::int64_t>(left, 0)) +
                       " parameters this layer may create (max_param_floats=" + std::to_string(max_param_floats_) +
                       ")");
  }
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
