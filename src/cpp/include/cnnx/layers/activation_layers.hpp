// Keras' activation layers: Activation, ReLU, LeakyReLU, ELU and Softmax (no weights).
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <string>

#include "cnnx/export.hpp"
#include "cnnx/layer.hpp"

namespace cnnx {

// keras.layers.ReLU(max_value=None, negative_slope=0.0, threshold=0.0). With the defaults it is
// the plain ReLU kernel; otherwise Keras' general formula.
struct ReLUConfig {
  float max_value = std::numeric_limits<float>::infinity();  // None
  float negative_slope = 0.0f;
  float threshold = 0.0f;
};
// keras.layers.Activation(activation): "relu", "softmax", ... (cnnx::parse_activation's names).
CNNX_API std::shared_ptr<Layer> make_activation(std::string name, const std::string& activation);
CNNX_API std::shared_ptr<Layer> make_relu(std::string name, ReLUConfig config = {});
// keras.layers.LeakyReLU(negative_slope=0.3).
CNNX_API std::shared_ptr<Layer> make_leaky_relu(std::string name, float negative_slope = 0.3f);
// keras.layers.ELU(alpha=1.0); alpha >= 0.
CNNX_API std::shared_ptr<Layer> make_elu(std::string name, float alpha = 1.0f);
// keras.layers.Softmax(axis=-1): only the last axis.
CNNX_API std::shared_ptr<Layer> make_softmax(std::string name, std::int64_t axis = -1);

}  // namespace cnnx
