// Conv2D: Keras' keras.layers.Conv2D on NHWC input. Weights: kernel (kh, kw, cin, filters), bias.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "cnnx/export.hpp"
#include "cnnx/layer.hpp"

namespace cnnx {

struct Conv2DConfig {
  std::int64_t filters = 0;
  std::int64_t kernel_h = 3, kernel_w = 3;
  std::int64_t stride_h = 1, stride_w = 1;
  std::int64_t dilation_h = 1, dilation_w = 1;
  std::string padding = "valid";  // "valid" or "same" (TensorFlow's: extra pad bottom/right)
  std::string activation = "linear";
  bool use_bias = true;
  std::string kernel_initializer = "glorot_uniform";
  std::string bias_initializer = "zeros";
};

// Validates the configuration: ValueError naming the argument (filters <= 0, padding, ...).
CNNX_API std::shared_ptr<Layer> make_conv2d(std::string name, Conv2DConfig config);

}  // namespace cnnx
