// Sequential: a linear stack of layers, built as a chain through Model (one implementation of
// forward, backward, the train step and inference for both).
#pragma once

#include <memory>

#include "cnnx/export.hpp"
#include "cnnx/model.hpp"

namespace cnnx {

class CNNX_API Sequential : public Model {
 public:
  // Appends a layer; the chain's nodes are made at build(), when the input shape is known.
  void add(std::shared_ptr<Layer> layer);
  // Makes the input node and one node per layer, then Model::build(). Building again with the
  // same shape is a no-op; with another shape, a ValueError.
  void build(const Shape& input_shape);
  using Model::build;
};

}  // namespace cnnx
