// AveragePooling2D: Keras' keras.layers.AveragePooling2D on NHWC input. With padding="same" the
// average is over the taps inside the image (padded positions are not counted), as in Keras/TF.
#pragma once

#include "cnnx/layer.hpp"
#include "cnnx/layers/average_pooling2d.hpp"
#include "kernels/conv_geometry.hpp"
#include "layers/pooling2d.hpp"

namespace cnnx {

using AveragePooling2DConfig = Pooling2DConfig;

class AveragePooling2D : public Layer {
 public:
  AveragePooling2D(std::string name, AveragePooling2DConfig config);
  std::string class_name() const override { return "AveragePooling2D"; }
  std::shared_ptr<Layer> clone() const override { return make_clone(*this); }
  bool backward_reads_inputs() const override { return false; }
  bool backward_reads_output() const override { return false; }
  const AveragePooling2DConfig& config() const { return cfg_; }

  void forward(const float* x, float* y, std::int64_t n, bool training) override;
  void backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) override;

 protected:
  Shape do_build(const Shape& input_shape, Rng& rng) override;

 private:
  AveragePooling2DConfig cfg_;
  kernels::ConvGeometry geom_{};
};

}  // namespace cnnx
