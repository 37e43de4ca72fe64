// Activation layers: Keras' Activation, ReLU, LeakyReLU, ELU and Softmax as layers of their own.
// Each is an element-wise pass over the sample (Softmax: over the last axis) with the kernels
// Conv2D and Dense fuse (kernels/activations.hpp). No weights.
// activation() reports the activation, so the model's exact shortcuts apply to these layers
// too: softmax + cross-entropy hands backward dL/dz, and a MaxPooling2D after a ReLU applies
// the ReLU derivative itself; backward then passes the gradient through unchanged.
#pragma once

#include <limits>

#include "cnnx/layer.hpp"
#include "cnnx/layers/activation_layers.hpp"

namespace cnnx {

// keras.layers.Activation("relu"). The C++ name avoids the Activation enum; class_name() is
// Keras'. Also the base of the named activation layers below.
class ActivationLayer : public Layer {
 public:
  ActivationLayer(std::string name, const std::string& activation);
  std::string class_name() const override { return "Activation"; }
  std::shared_ptr<Layer> clone() const override { return make_clone(*this); }
  Activation activation() const override { return act_; }
  bool backward_reads_inputs() const override { return false; }  // the derivative comes from y
  float alpha() const { return alpha_; }                         // LeakyReLU's negative_slope, ELU's alpha

  void forward(const float* x, float* y, std::int64_t n, bool training) override;
  void backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) override;

 protected:
  ActivationLayer(std::string name, Activation act, float alpha) : Layer(std::move(name)), act_(act), alpha_(alpha) {}
  Shape do_build(const Shape& input_shape, Rng& rng) override;
  Activation act_;
  float alpha_;  // leaky_relu's negative slope, elu's alpha
};

class ReLU : public ActivationLayer {
 public:
  ReLU(std::string name, ReLUConfig config);
  std::string class_name() const override { return "ReLU"; }
  std::shared_ptr<Layer> clone() const override { return make_clone(*this); }
  const ReLUConfig& config() const { return cfg_; }
  Activation activation() const override { return general_ ? Activation::linear : Activation::relu; }
  bool backward_reads_inputs() const override { return general_; }  // Keras' general formula reads x
  void forward(const float* x, float* y, std::int64_t n, bool training) override;
  void backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) override;

 private:
  ReLUConfig cfg_;
  bool general_ = false;
};

// keras.layers.LeakyReLU(negative_slope=0.3).
class LeakyReLU : public ActivationLayer {
 public:
  LeakyReLU(std::string name, float negative_slope);
  std::string class_name() const override { return "LeakyReLU"; }
  std::shared_ptr<Layer> clone() const override { return make_clone(*this); }
};

// keras.layers.ELU(alpha=1.0). alpha >= 0 (backward reads the output; see kernels/activations.hpp).
class ELU : public ActivationLayer {
 public:
  ELU(std::string name, float alpha);
  std::string class_name() const override { return "ELU"; }
  std::shared_ptr<Layer> clone() const override { return make_clone(*this); }
};

// keras.layers.Softmax(axis=-1): only the last (channels) axis.
class Softmax : public ActivationLayer {
 public:
  Softmax(std::string name, std::int64_t axis);
  std::string class_name() const override { return "Softmax"; }
  std::shared_ptr<Layer> clone() const override { return make_clone(*this); }
  std::int64_t axis() const { return axis_; }

 protected:
  Shape do_build(const Shape& input_shape, Rng& rng) override;

 private:
  std::int64_t axis_;
};

}  // namespace cnnx
