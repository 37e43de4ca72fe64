// Flatten: (h, w, c) -> (h*w*c,), in NHWC order, so Dense weights after it match Keras'.
#pragma once

#include "cnnx/layer.hpp"
#include "cnnx/layers/flatten.hpp"

namespace cnnx {

class Flatten : public Layer {
 public:
  explicit Flatten(std::string name) : Layer(std::move(name)) {}
  std::string class_name() const override { return "Flatten"; }
  std::shared_ptr<Layer> clone() const override { return make_clone(*this); }
  bool backward_reads_inputs() const override { return false; }
  bool backward_reads_output() const override { return false; }
  void forward(const float* x, float* y, std::int64_t n, bool training) override;
  void backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) override;

 protected:
  Shape do_build(const Shape& input_shape, Rng& rng) override;
};

}  // namespace cnnx
