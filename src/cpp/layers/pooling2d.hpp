// What MaxPooling2D and AveragePooling2D share: Keras' arguments, their validation and the
// window geometry over one NHWC sample.
#pragma once

#include <optional>
#include <string>

#include "cnnx/layers/pooling2d.hpp"
#include "cnnx/tensor.hpp"
#include "kernels/conv_geometry.hpp"

namespace cnnx {

// Fills the default strides and validates; ValueError messages start with `where`.
void normalize_pooling_config(Pooling2DConfig& config, const std::string& where);
// The window geometry for a (h, w, c) sample; ValueError for another rank or a sample smaller
// than the window with padding "valid".
kernels::ConvGeometry pooling_geometry(const Pooling2DConfig& config, const Shape& input_shape,
                                       const std::string& where);

}  // namespace cnnx
