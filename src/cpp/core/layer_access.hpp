// What only the model may change on a layer (Layer befriends detail::LayerAccess): the fusion
// flags its planner decides. Private to the core.
#pragma once

#include "cnnx/layer.hpp"

namespace cnnx::detail {

struct LayerAccess {
  static void set_output_grad_is_preactivation(Layer& layer, bool on) { layer.dy_is_preactivation_ = on; }
};

}  // namespace cnnx::detail
