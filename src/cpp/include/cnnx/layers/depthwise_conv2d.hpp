// DepthwiseConv2D: Keras' keras.layers.DepthwiseConv2D on NHWC input. Weights: depthwise_kernel
// (kh, kw, cin, depth_multiplier), bias (cin * depth_multiplier,).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "cnnx/export.hpp"
#include "cnnx/layer.hpp"

namespace cnnx {

struct DepthwiseConv2DConfig {
  std::int64_t kernel_h = 3, kernel_w = 3;
  std::int64_t stride_h = 1, stride_w = 1;
  std::int64_t dilation_h = 1, dilation_w = 1;
  std::int64_t depth_multiplier = 1;
  std::string padding = "valid";  // "valid" or "same" (TensorFlow's: extra pad bottom/right)
  std::string activation = "linear";
  bool use_bias = true;
  std::string depthwise_initializer = "glorot_uniform";
  std::string bias_initializer = "zeros";
};

// Validates the configuration (ValueError).
CNNX_API std::shared_ptr<Layer> make_depthwise_conv2d(std::string name, DepthwiseConv2DConfig config = {});

}  // namespace cnnx
