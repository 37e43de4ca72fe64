// The element-wise merge layers, Keras' keras.layers.Add, Subtract, Multiply, Average, Maximum
// and Minimum, over a list of inputs of one shape. Subtract takes exactly 2 inputs (x_0 - x_1).
#pragma once

#include <memory>
#include <string>

#include "cnnx/export.hpp"
#include "cnnx/layer.hpp"

namespace cnnx {

CNNX_API std::shared_ptr<Layer> make_add(std::string name);
CNNX_API std::shared_ptr<Layer> make_subtract(std::string name);
CNNX_API std::shared_ptr<Layer> make_multiply(std::string name);
CNNX_API std::shared_ptr<Layer> make_average(std::string name);
CNNX_API std::shared_ptr<Layer> make_maximum(std::string name);
CNNX_API std::shared_ptr<Layer> make_minimum(std::string name);

}  // namespace cnnx
