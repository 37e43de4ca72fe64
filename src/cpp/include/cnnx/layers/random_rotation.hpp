// RandomRotation: Keras' keras.layers.RandomRotation(factor, fill_mode="reflect",
// interpolation="bilinear", seed=None, fill_value=0.0); factor [lower, upper] in fractions of 2 pi.
#pragma once

#include <memory>
#include <string>

#include "cnnx/export.hpp"
#include "cnnx/layer.hpp"
#include "cnnx/layers/image_augmentation.hpp"

namespace cnnx {

CNNX_API std::shared_ptr<Layer> make_random_rotation(std::string name, float lower, float upper,
                                                     AffineOptions options = {});

}  // namespace cnnx
