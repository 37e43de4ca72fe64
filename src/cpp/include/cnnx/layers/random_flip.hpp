// RandomFlip: Keras' keras.layers.RandomFlip(mode="horizontal_and_vertical", seed=None).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "cnnx/export.hpp"
#include "cnnx/layer.hpp"

namespace cnnx {

// mode: "horizontal", "vertical" or "horizontal_and_vertical" (ValueError otherwise).
CNNX_API std::shared_ptr<Layer> make_random_flip(std::string name, std::string mode = "horizontal_and_vertical",
                                                 bool has_seed = false, std::uint64_t seed = 0);

}  // namespace cnnx
