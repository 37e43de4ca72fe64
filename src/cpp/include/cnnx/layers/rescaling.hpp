// Rescaling: Keras' keras.layers.Rescaling(scale, offset=0.0): y = x * scale + offset.
#pragma once

#include <memory>
#include <string>

#include "cnnx/export.hpp"
#include "cnnx/layer.hpp"

namespace cnnx {

CNNX_API std::shared_ptr<Layer> make_rescaling(std::string name, float scale, float offset = 0.0f);

}  // namespace cnnx
