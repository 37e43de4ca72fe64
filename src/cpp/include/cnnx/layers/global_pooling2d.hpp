// GlobalAveragePooling2D and GlobalMaxPooling2D: Keras' layers of those names on NHWC input,
// (h, w, c) -> (c,), or (1, 1, c) with keepdims=True.
#pragma once

#include <memory>
#include <string>

#include "cnnx/export.hpp"
#include "cnnx/layer.hpp"

namespace cnnx {

CNNX_API std::shared_ptr<Layer> make_global_average_pooling2d(std::string name, bool keepdims = false);
CNNX_API std::shared_ptr<Layer> make_global_max_pooling2d(std::string name, bool keepdims = false);

}  // namespace cnnx
