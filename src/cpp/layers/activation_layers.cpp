// Activation layers: validation here, the loops in kernels/activations.cpp. Forward copies x to
// y and applies the activation in place; backward applies the derivative (from the output y)
// to dy in place and copies it to dx. Rows are samples x pixels, columns the last axis.
#include "layers/activation_layers.hpp"

#include <cmath>
#include <cstring>

#include "cnnx/error.hpp"
#include "kernels/activations.hpp"

namespace cnnx {
namespace {

std::string num(double v) {
  std::string s = std::to_string(v);
  s.erase(s.find_last_not_of('0') + 1);
  if (!s.empty() && s.back() == '.') s += '0';
  return s;
}

void copy(float* dst, const float* src, std::int64_t count) {
  std::memcpy(dst, src, sizeof(float) * static_cast<std::size_t>(count));
}

}  // namespace

ActivationLayer::ActivationLayer(std::string name, const std::string& activation)
    : Layer(std::move(name)), act_(Activation::linear), alpha_(0.0f) {
  act_ = parse_activation(activation, where());
  alpha_ = activation_default_alpha(act_);
}

Shape ActivationLayer::do_build(const Shape& in, Rng& rng) {
  (void)rng;
  if (in.empty()) throw ValueError(where() + ": expected input of rank >= 2 (batch, features), received shape (None,)");
  return in;
}

void ActivationLayer::forward(const float* x, float* y, std::int64_t n, bool training) {
  (void)training;
  const std::int64_t cols = input_shape().back(), size = n * shape_size(input_shape());
  copy(y, x, size);
  kernels::activation_forward(act_, y, size / cols, cols, alpha_);
}

void ActivationLayer::backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) {
  (void)x;
  if (!dx) return;
  const std::int64_t cols = input_shape().back(), size = n * shape_size(input_shape());
  if (!output_grad_is_preactivation()) kernels::activation_backward(act_, y, dy, size / cols, cols, alpha_);
  copy(dx, dy, size);
}

ReLU::ReLU(std::string name, ReLUConfig config)
    : ActivationLayer(std::move(name), Activation::relu, 0.0f), cfg_(config) {
  if (std::isnan(cfg_.max_value) || cfg_.max_value < 0.0f)
    throw ValueError(where() +
                     ": expected max_value >= 0 (infinity: no limit), received max_value=" + num(cfg_.max_value));
  if (!(cfg_.negative_slope >= 0.0f) || std::isinf(cfg_.negative_slope))
    throw ValueError(where() +
                     ": expected a finite negative_slope >= 0, received negative_slope=" + num(cfg_.negative_slope));
  if (!(cfg_.threshold >= 0.0f) || std::isinf(cfg_.threshold))
    throw ValueError(where() + ": expected a finite threshold >= 0, received threshold=" + num(cfg_.threshold));
  general_ = !std::isinf(cfg_.max_value) || cfg_.negative_slope != 0.0f || cfg_.threshold != 0.0f;
}

void ReLU::forward(const float* x, float* y, std::int64_t n, bool training) {
  if (!general_) return ActivationLayer::forward(x, y, n, training);
  kernels::relu_general_forward(x, y, n * shape_size(input_shape()), cfg_.negative_slope, cfg_.max_value,
                                cfg_.threshold);
}

void ReLU::backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) {
  if (!general_) return ActivationLayer::backward(x, y, dy, dx, n);
  if (dx)
    kernels::relu_general_backward(x, dy, dx, n * shape_size(input_shape()), cfg_.negative_slope, cfg_.max_value,
                                   cfg_.threshold);
}

LeakyReLU::LeakyReLU(std::string name, float negative_slope)
    : ActivationLayer(std::move(name), Activation::leaky_relu, negative_slope) {
  if (!(negative_slope >= 0.0f) || std::isinf(negative_slope))
    throw ValueError(where() +
                     ": expected a finite negative_slope >= 0, received negative_slope=" + num(negative_slope));
}

ELU::ELU(std::string name, float alpha) : ActivationLayer(std::move(name), Activation::elu, alpha) {
  if (!(alpha >= 0.0f) || std::isinf(alpha))
    throw ValueError(where() + ": expected a finite alpha >= 0, received alpha=" + num(alpha));
}

Softmax::Softmax(std::string name, std::int64_t axis)
    : ActivationLayer(std::move(name), Activation::softmax, 0.0f), axis_(axis) {
  if (axis_ == 0) throw ValueError(where() + ": expected the last axis (axis=-1), received axis=0 (the batch axis)");
  if (axis_ != -1 && axis_ < 0)
    throw ValueError(where() + ": only the last axis (axis=-1) is supported, received axis=" + std::to_string(axis_));
}

Shape Softmax::do_build(const Shape& in, Rng& rng) {
  Shape out = ActivationLayer::do_build(in, rng);
  // A positive axis names the last one when it equals the sample rank (the batch axis is 0).
  if (axis_ != -1 && axis_ != static_cast<std::int64_t>(in.size()))
    throw ValueError(where() + ": only the last axis (axis=-1) is supported, received axis=" + std::to_string(axis_) +
                     " for input of rank " + std::to_string(in.size() + 1));
  return out;
}

// The public factory (cnnx/layers/activation_layers.hpp).
std::shared_ptr<Layer> make_activation(std::string name, const std::string& activation) {
  return std::make_shared<ActivationLayer>(std::move(name), activation);
}
std::shared_ptr<Layer> make_relu(std::string name, ReLUConfig config) {
  return std::make_shared<ReLU>(std::move(name), config);
}
std::shared_ptr<Layer> make_leaky_relu(std::string name, float negative_slope) {
  return std::make_shared<LeakyReLU>(std::move(name), negative_slope);
}
std::shared_ptr<Layer> make_elu(std::string name, float alpha) { return std::make_shared<ELU>(std::move(name), alpha); }
std::shared_ptr<Layer> make_softmax(std::string name, std::int64_t axis) {
  return std::make_shared<Softmax>(std::move(name), axis);
}

}  // namespace cnnx
