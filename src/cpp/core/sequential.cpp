#include "cnnx/sequential.hpp"

#include "cnnx/error.hpp"

namespace cnnx {

void Sequential::add(std::shared_ptr<Layer> layer) {
  if (!layer) throw TypeError("Sequential.add: expected a layer, received a null layer");
  if (built()) throw ValueError("Sequential.add: the model is already built; add layers before building it");
  for (const auto& l : layers())
    if (l.get() == layer.get() || l->name() == layer->name())
      throw ValueError("Sequential.add: the model already has a layer named '" + layer->name() +
                       "'; layer names must be unique");
  pending_layers().push_back(std::move(layer));
}

void Sequential::build(const Shape& input_shape) {
  if (built()) {
    if (input_shape != this->input_shape())
      throw ValueError("Sequential: already built for input shape " + shape_str(this->input_shape()) + ", received " +
                       shape_str(input_shape));
    return;
  }
  if (layers().empty()) throw ValueError("Sequential: cannot build a model with no layers");
  const auto chain = layers();
  add_input(input_shape);
  int prev = 0;
  for (const auto& l : chain) prev = add_node(l, {prev});
  set_output(prev);
  try {
    Model::build();
  } catch (...) {
    clear_nodes();  // a layer refused the shape: another build may follow
    throw;
  }
}

}  // namespace cnnx
