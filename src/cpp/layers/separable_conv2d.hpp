// SeparableConv2D: Keras' keras.layers.SeparableConv2D on NHWC input: a depthwise convolution
// (no bias, no activation) then a 1x1 pointwise convolution with bias and activation.
// Weights in Keras' order: depthwise_kernel (kh, kw, cin, depth_multiplier), pointwise_kernel
// (1, 1, cin * depth_multiplier, filters), bias (filters,).
#pragma once

#include <vector>

#include "cnnx/layer.hpp"
#include "cnnx/layers/separable_conv2d.hpp"
#include "cnnx/tensor.hpp"
#include "kernels/conv_geometry.hpp"

namespace cnnx {

class SeparableConv2D : public Layer {
 public:
  SeparableConv2D(std::string name, SeparableConv2DConfig config);  // validates config; throws ValueError
  std::string class_name() const override { return "SeparableConv2D"; }
  std::shared_ptr<Layer> clone() const override { return make_clone(*this); }
  const SeparableConv2DConfig& config() const { return cfg_; }
  Activation activation() const override { return act_; }
  const kernels::ConvGeometry& geometry() const { return geom_; }

  void reserve(std::int64_t batch) override;
  void forward(const float* x, float* y, std::int64_t n, bool training) override;
  void backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) override;

 protected:
  Shape do_build(const Shape& input_shape, Rng& rng) override;

 private:
  SeparableConv2DConfig cfg_;
  Activation act_;
  kernels::ConvGeometry geom_{};
  std::int64_t mid_channels_ = 0;  // cin * depth_multiplier
  void ensure_workspace(std::int64_t n);
  Buffer mid_;             // the depthwise output [n, oh, ow, mid_channels_], then its gradient
  Buffer scratch_;         // per-slot rows of the depthwise kernels
  Buffer kernel_scratch_;  // depthwise kernel-gradient partials, or the flipped kernel
  std::int64_t slots_ = 0;
};

}  // namespace cnnx
