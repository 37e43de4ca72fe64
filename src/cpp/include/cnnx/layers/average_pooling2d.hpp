// AveragePooling2D: Keras' keras.layers.AveragePooling2D on NHWC input. With padding="same" the
// average is over the taps inside the image (padded positions are not counted), as in Keras/TF.
#pragma once

#include <memory>
#include <string>

#include "cnnx/export.hpp"
#include "cnnx/layer.hpp"
#include "cnnx/layers/pooling2d.hpp"

namespace cnnx {

using AveragePooling2DConfig = Pooling2DConfig;

// Validates the configuration (ValueError).
CNNX_API std::shared_ptr<Layer> make_average_pooling2d(std::string name, AveragePooling2DConfig config = {});

}  // namespace cnnx
