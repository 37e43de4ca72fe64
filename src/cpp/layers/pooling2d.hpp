// What MaxPooling2D and AveragePooling2D share: Keras' arguments, their validation and the
// window geometry over one NHWC sample.
#pragma once

#include <optional>
#include <string>

#include "cnnx/conv_geometry.hpp"
#include "cnnx/tensor.hpp"

namespace cnnx {

struct Pooling2DConfig {
  std::int64_t pool_h = 2, pool_w = 2;
  // Unset: the pool size (Keras' strides=None). A stride of 0 is an error, not a default.
  std::optional<std::int64_t> stride_h, stride_w;
  std::string padding = "valid";
};

// Fills the default strides and validates; ValueError messages start with `where`.
void normalize_pooling_config(Pooling2DConfig& config, const std::string& where);
// The window geometry for a (h, w, c) sample; ValueError for another rank or a sample smaller
// than the window with padding "valid".
kernels::ConvGeometry pooling_geometry(const Pooling2DConfig& config, const Shape& input_shape,
                                       const std::string& where);

}  // namespace cnnx
