// RandomContrast: Keras' keras.layers.RandomContrast(factor, value_range=(0, 255), seed=None):
// contrast factor drawn in [1 - lower, 1 + upper] per training image.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "cnnx/export.hpp"
#include "cnnx/layer.hpp"

namespace cnnx {

// lower, upper in [0, 1]; value_min < value_max; has_seed false: the seed comes from the model.
CNNX_API std::shared_ptr<Layer> make_random_contrast(std::string name, float lower, float upper, float value_min = 0.0f,
                                                     float value_max = 255.0f, bool has_seed = false,
                                                     std::uint64_t seed = 0);

}  // namespace cnnx
