// Reshape: Keras' keras.layers.Reshape(target_shape). The per-sample shape changes, the NHWC
// data does not; one dimension may be -1 and is inferred at build time.
#pragma once

#include "cnnx/layer.hpp"
#include "cnnx/layers/reshape.hpp"

namespace cnnx {

class Reshape : public Layer {
 public:
  Reshape(std::string name, Shape target_shape);  // validates: positive dims, at most one -1
  std::string class_name() const override { return "Reshape"; }
  std::shared_ptr<Layer> clone() const override { return make_clone(*this); }
  bool backward_reads_inputs() const override { return false; }
  bool backward_reads_output() const override { return false; }
  const Shape& target_shape() const { return target_; }
  void forward(const float* x, float* y, std::int64_t n, bool training) override;
  void backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) override;

 protected:
  Shape do_build(const Shape& input_shape, Rng& rng) override;

 private:
  Shape target_;
};

}  // namespace cnnx
