// Element-wise activations fused into Conv2D and Dense (Keras' `activation=` argument) and run
// by the activation layers (Activation, ReLU, LeakyReLU, ELU, Softmax).
#pragma once

#include <string>

#include "cnnx/export.hpp"

namespace cnnx {

enum class Activation { linear, relu, sigmoid, tanh, softmax, leaky_relu, elu };

// Parses Keras' names ("relu", "linear", None -> "linear", ...); throws ValueError naming `where`.
CNNX_API Activation parse_activation(const std::string& name, const std::string& where);
CNNX_API const char* activation_name(Activation a);
// The parameter the string form uses, as in keras.activations: leaky_relu's negative_slope 0.2,
// elu's alpha 1.0 (0 for the others, which take none).
CNNX_API float activation_default_alpha(Activation a);

}  // namespace cnnx
