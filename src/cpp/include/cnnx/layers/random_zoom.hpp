// RandomZoom: Keras' keras.layers.RandomZoom(height_factor, width_factor=None, fill_mode="reflect",
// interpolation="bilinear", seed=None, fill_value=0.0); a positive factor zooms out.
#pragma once

#include <memory>
#include <string>

#include "cnnx/export.hpp"
#include "cnnx/layer.hpp"
#include "cnnx/layers/image_augmentation.hpp"

namespace cnnx {

// has_width false: the width follows the height (the aspect ratio is kept).
CNNX_API std::shared_ptr<Layer> make_random_zoom(std::string name, float height_lower, float height_upper,
                                                 bool has_width = false, float width_lower = 0.0f,
                                                 float width_upper = 0.0f, AffineOptions options = {});

}  // namespace cnnx
