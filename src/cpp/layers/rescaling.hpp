// Rescaling: Keras' keras.layers.Rescaling(scale, offset=0.0): y = x * scale + offset,
// element-wise, no weights.
#pragma once

#include "cnnx/layer.hpp"
#include "cnnx/layers/rescaling.hpp"

namespace cnnx {

class Rescaling : public Layer {
 public:
  Rescaling(std::string name, float scale, float offset);
  std::string class_name() const override { return "Rescaling"; }
  std::shared_ptr<Layer> clone() const override { return make_clone(*this); }
  bool backward_reads_inputs() const override { return false; }
  bool backward_reads_output() const override { return false; }
  float scale() const { return scale_; }
  float offset() const { return offset_; }
  void forward(const float* x, float* y, std::int64_t n, bool training) override;
  void backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) override;

 protected:
  Shape do_build(const Shape& input_shape, Rng& rng) override;

 private:
  float scale_, offset_;
};

}  // namespace cnnx
