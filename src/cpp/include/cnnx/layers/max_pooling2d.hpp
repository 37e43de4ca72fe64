// MaxPooling2D: Keras' keras.layers.MaxPooling2D on NHWC input.
#pragma once

#include <memory>
#include <string>

#include "cnnx/export.hpp"
#include "cnnx/layer.hpp"
#include "cnnx/layers/pooling2d.hpp"

namespace cnnx {

using MaxPooling2DConfig = Pooling2DConfig;

// Validates the configuration (ValueError).
CNNX_API std::shared_ptr<Layer> make_max_pooling2d(std::string name, MaxPooling2DConfig config = {});

}  // namespace cnnx
