// Keras' arguments of MaxPooling2D and AveragePooling2D.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace cnnx {

// keras.layers.MaxPooling2D / AveragePooling2D(pool_size=(2, 2), strides=None, padding="valid").
struct Pooling2DConfig {
  std::int64_t pool_h = 2, pool_w = 2;
  // Unset: the pool size (Keras' strides=None). A stride of 0 is an error, not a default.
  std::optional<std::int64_t> stride_h, stride_w;
  std::string padding = "valid";
};

}  // namespace cnnx
