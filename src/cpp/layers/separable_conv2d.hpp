// SeparableConv2D: Keras' keras.layers.SeparableConv2D on NHWC input: a depthwise convolution
// (no bias, no activation) then a 1x1 pointwise convolution with bias and activation.
// Weights in Keras' order: depthwise_kernel (kh, kw, cin, depth_multiplier), pointwise_kernel
// (1, 1, cin * depth_multiplier, filters), bias (filters,).
#pragma once

#include <vector>

#include "cnnx/conv_geometry.hpp"
#include "cnnx/layer.hpp"
#include "cnnx/tensor.hpp"

namespace cnnx {

struct SeparableConv2DConfig {
  std::int64_t filters = 0;
  std::int64_t kernel_h = 3, kernel_w = 3;
  std::int64_t stride_h = 1, stride_w = 1;
  std::int64_t dilation_h = 1, dilation_w = 1;
  std::int64_t depth_multiplier = 1;
  std::string padding = "valid";  // "valid" or "same" (TensorFlow's: extra pad bottom/right)
  std::string activation = "linear";
  bool use_bias = true;
  std::string depthwise_initializer = "glorot_uniform";
  std::string pointwise_initializer = "glorot_uniform";
  std::string bias_initializer = "zeros";
};

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
