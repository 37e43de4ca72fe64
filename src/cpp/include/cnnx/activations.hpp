// Element-wise activations fused into Conv2D and Dense (Keras' `activation=` argument).
#pragma once

#include <string>

namespace cnnx {

enum class Activation { linear, relu, sigmoid, tanh, softmax };

// Parses Keras' names ("relu", "linear", None -> "linear", ...); throws ValueError naming `where`.
Activation parse_activation(const std::string& name, const std::string& where);
const char* activation_name(Activation a);

}  // namespace cnnx
