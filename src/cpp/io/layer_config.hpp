// Layer configurations both ways: Keras 3's config JSON (the keys and values the Python
// package's get_config writes) to a core layer, validated, and a core layer back to that JSON.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cnnx/layer.hpp"
#include "io/json_util.hpp"

namespace cnnx::io {

// Every layer class a configuration may name (not InputLayer, Sequential or Functional),
// sorted.
const std::vector<std::string>& layer_class_names();

// Keras' automatic name for a class: "conv2d" for Conv2D, "max_pooling2d" for MaxPooling2D.
std::string snake_name(const std::string& class_name);

struct LayerFromConfig {
  std::shared_ptr<Layer> layer;
  bool trainable = true;             // the config's own flag (models may freeze it further)
  std::optional<Shape> input_shape;  // Keras' input_shape argument, when given
};

// The layer `class_name` from its config, named `name` (the caller resolves a missing name).
// Wrong types or values: TypeError / ValueError "<where>: expected ..., received ...", where
// `where` names the layer ("layer 'conv2d' (Conv2D)"); the layer's own constructor checks the
// values it knows (messages "Conv2D 'conv2d': ...").
LayerFromConfig layer_from_config(const std::string& class_name, const json& config, const std::string& name,
                                  const std::string& where);

// The config the Python package's get_config gives for the same layer, keys in its order.
ojson layer_config(const Layer& layer);

}  // namespace cnnx::io
