// Dense: Keras' keras.layers.Dense. Applies to the last axis, so a rank-1 sample is the usual
// fully-connected layer and a (h, w, c) sample is a per-pixel 1x1 projection, as in Keras.
#pragma once

#include "cnnx/layer.hpp"
#include "cnnx/layers/dense.hpp"

namespace cnnx {

class Dense : public Layer {
 public:
  Dense(std::string name, DenseConfig config);
  std::string class_name() const override { return "Dense"; }
  std::shared_ptr<Layer> clone() const override { return make_clone(*this); }
  const DenseConfig& config() const { return cfg_; }
  Activation activation() const override { return act_; }

  void forward(const float* x, float* y, std::int64_t n, bool training) override;
  void backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) override;

 protected:
  Shape do_build(const Shape& input_shape, Rng& rng) override;

 private:
  DenseConfig cfg_;
  Activation act_;
  std::int64_t in_features_ = 0, rows_per_sample_ = 1;
};

}  // namespace cnnx
