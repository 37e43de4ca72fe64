// Weight initializers with Keras' names and formulas (keras.initializers). fan_in / fan_out are
// Keras' receptive-field fans: kh*kw*cin and kh*kw*cout for a convolution kernel.
#pragma once

#include <string>

#include "cnnx/export.hpp"
#include "cnnx/random.hpp"
#include "cnnx/tensor.hpp"

namespace cnnx {

// Known: zeros, ones, glorot_uniform, glorot_normal, he_uniform, he_normal, lecun_uniform,
// lecun_normal. Throws ValueError naming the unknown initializer.
CNNX_API void check_initializer(const std::string& name, const std::string& where);
CNNX_API void initialize(Tensor& t, const std::string& name, double fan_in, double fan_out, Rng& rng);

}  // namespace cnnx
