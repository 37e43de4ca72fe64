// Resizing: Keras' keras.layers.Resizing(height, width, interpolation="bilinear",
// crop_to_aspect_ratio=False), as tf.image.resize (half-pixel centres, no antialias).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "cnnx/export.hpp"
#include "cnnx/layer.hpp"

namespace cnnx {

struct ResizingConfig {
  std::int64_t height = 0, width = 0;
  std::string interpolation = "bilinear";
  bool crop_to_aspect_ratio = false;
};

// Validates the configuration (ValueError).
CNNX_API std::shared_ptr<Layer> make_resizing(std::string name, ResizingConfig config);

}  // namespace cnnx
