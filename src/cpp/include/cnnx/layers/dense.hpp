// Dense: Keras' keras.layers.Dense. Applies to the last axis, so a rank-1 sample is the usual
// fully-connected layer and a (h, w, c) sample is a per-pixel 1x1 projection, as in Keras.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "cnnx/export.hpp"
#include "cnnx/layer.hpp"

namespace cnnx {

struct DenseConfig {
  std::int64_t units = 0;
  std::string activation = "linear";
  bool use_bias = true;
  std::string kernel_initializer = "glorot_uniform";
  std::string bias_initializer = "zeros";
};

// Validates the configuration: ValueError naming the argument (units <= 0, activation, ...).
CNNX_API std::shared_ptr<Layer> make_dense(std::string name, DenseConfig config);

}  // namespace cnnx
