// DepthwiseConv2D: Keras' keras.layers.DepthwiseConv2D on NHWC input. Each input channel is
// convolved with its own depth_multiplier filters; output channel c*depth_multiplier + m.
// Weights: depthwise_kernel (kh, kw, cin, depth_multiplier), bias (cin * depth_multiplier,).
#pragma once

#include <vector>

#include "cnnx/layer.hpp"
#include "cnnx/layers/depthwise_conv2d.hpp"
#include "cnnx/tensor.hpp"
#include "kernels/conv_geometry.hpp"

namespace cnnx {

class DepthwiseConv2D : public Layer {
 public:
  DepthwiseConv2D(std::string name, DepthwiseConv2DConfig config);  // validates config; throws ValueError
  std::string class_name() const override { return "DepthwiseConv2D"; }
  std::shared_ptr<Layer> clone() const override { return make_clone(*this); }
  const DepthwiseConv2DConfig& config() const { return cfg_; }
  Activation activation() const override { return act_; }
  const kernels::ConvGeometry& geometry() const { return geom_; }

  void reserve(std::int64_t batch) override;
  void forward(const float* x, float* y, std::int64_t n, bool training) override;
  void backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) override;

 protected:
  Shape do_build(const Shape& input_shape, Rng& rng) override;

 private:
  DepthwiseConv2DConfig cfg_;
  Activation act_;
  kernels::ConvGeometry geom_{};
  void ensure_workspace();
  Buffer scratch_;         // per-slot rows (kernels/depthwise_conv.hpp), one slot per thread
  Buffer kernel_scratch_;  // kernel-gradient partials per chunk, or the flipped kernel
  std::int64_t slots_ = 0;
};

}  // namespace cnnx
