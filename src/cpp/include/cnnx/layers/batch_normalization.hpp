// BatchNormalization: Keras' keras.layers.BatchNormalization over the last (channels) axis.
// Weights in Keras' order: gamma (if scale), beta (if center), moving_mean, moving_variance.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "cnnx/export.hpp"
#include "cnnx/layer.hpp"

namespace cnnx {

struct BatchNormalizationConfig {
  std::int64_t axis = -1;  // only the channels axis: -1, or its index counting the batch axis
  float momentum = 0.99f;
  float epsilon = 1e-3f;
  bool center = true;
  bool scale = true;
  std::string beta_initializer = "zeros";
  std::string gamma_initializer = "ones";
  std::string moving_mean_initializer = "zeros";
  std::string moving_variance_initializer = "ones";
};

// Validates the configuration (ValueError).
CNNX_API std::shared_ptr<Layer> make_batch_normalization(std::string name, BatchNormalizationConfig config = {});

}  // namespace cnnx
