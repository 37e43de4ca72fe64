// Concatenate: Keras' keras.layers.Concatenate(axis=-1), over a list of inputs. The axis counts the
// batch axis as Keras does; the batch axis itself is refused (ValueError).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "cnnx/export.hpp"
#include "cnnx/layer.hpp"

namespace cnnx {

CNNX_API std::shared_ptr<Layer> make_concatenate(std::string name, std::int64_t axis = -1);

}  // namespace cnnx
