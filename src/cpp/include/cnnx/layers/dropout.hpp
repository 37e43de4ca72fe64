// Dropout: Keras' keras.layers.Dropout(rate, noise_shape=None, seed=None), inverted dropout: the
// identity in inference.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "cnnx/export.hpp"
#include "cnnx/layer.hpp"
#include "cnnx/tensor.hpp"

namespace cnnx {

struct DropoutConfig {
  float rate = 0.5f;
  // Keras' noise_shape including the batch axis; -1 stands for None (the input's size). Empty:
  // one draw per element. A 1 shares the draw along that axis, e.g. (-1, 1, 1, c) drops whole
  // channels.
  Shape noise_shape;
  bool has_seed = false;  // false: the seed comes from the model (Layer::build)
  std::uint64_t seed = 0;
};

// Validates the configuration (ValueError).
CNNX_API std::shared_ptr<Layer> make_dropout(std::string name, DropoutConfig config);

}  // namespace cnnx
