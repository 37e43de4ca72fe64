// Flatten: (h, w, c) -> (h*w*c,), in NHWC order, so Dense weights after it match Keras'.
#pragma once

#include <memory>
#include <string>

#include "cnnx/export.hpp"
#include "cnnx/layer.hpp"

namespace cnnx {

CNNX_API std::shared_ptr<Layer> make_flatten(std::string name);

}  // namespace cnnx
