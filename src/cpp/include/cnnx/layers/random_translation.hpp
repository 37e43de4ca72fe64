// RandomTranslation: Keras' keras.layers.RandomTranslation(height_factor, width_factor,
// fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0); factors in [-1, 1].
#pragma once

#include <memory>
#include <string>

#include "cnnx/export.hpp"
#include "cnnx/layer.hpp"
#include "cnnx/layers/image_augmentation.hpp"

namespace cnnx {

CNNX_API std::shared_ptr<Layer> make_random_translation(std::string name, float height_lower, float height_upper,
                                                        float width_lower, float width_upper,
                                                        AffineOptions options = {});

}  // namespace cnnx
