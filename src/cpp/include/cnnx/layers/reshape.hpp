// Reshape: Keras' keras.layers.Reshape(target_shape); one dimension may be -1 (inferred at build).
#pragma once

#include <memory>
#include <string>

#include "cnnx/export.hpp"
#include "cnnx/layer.hpp"
#include "cnnx/tensor.hpp"

namespace cnnx {

// Validates: positive dims, at most one -1 (ValueError).
CNNX_API std::shared_ptr<Layer> make_reshape(std::string name, Shape target_shape);

}  // namespace cnnx
