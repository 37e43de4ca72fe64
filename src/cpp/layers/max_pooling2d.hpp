// MaxPooling2D: Keras' keras.layers.MaxPooling2D on NHWC input.
#pragma once

#include <vector>

#include "cnnx/layer.hpp"
#include "cnnx/layers/max_pooling2d.hpp"
#include "kernels/conv_geometry.hpp"
#include "layers/pooling2d.hpp"

namespace cnnx {

using MaxPooling2DConfig = Pooling2DConfig;

class MaxPooling2D : public Layer {
 public:
  MaxPooling2D(std::string name, MaxPooling2DConfig config);
  std::string class_name() const override { return "MaxPooling2D"; }
  std::shared_ptr<Layer> clone() const override { return make_clone(*this); }
  const MaxPooling2DConfig& config() const { return cfg_; }
  bool backward_reads_inputs() const override { return false; }  // the argmax offsets, kept by forward
  // Set by the model when the previous layer ends in ReLU: backward then applies the ReLU
  // derivative itself (see kernels/pool.hpp) and the previous layer skips it.
  void set_fuse_relu_backward(bool v) { fuse_relu_backward_ = v; }
  const kernels::ConvGeometry& geometry() const { return geom_; }
  // The argmax storage for a batch of n, for a convolution fused with this layer.
  std::int32_t* argmax_for(std::int64_t n) {
    const auto need = static_cast<std::size_t>(n * geom_.oh * geom_.ow * geom_.c);
    if (argmax_.size() < need) argmax_.resize(need);
    return argmax_.data();
  }

  void reserve(std::int64_t batch) override;
  std::int64_t workspace_floats(std::int64_t batch) const override;
  std::int64_t allocated_workspace_floats() const override { return static_cast<std::int64_t>(argmax_.size()); }
  void forward(const float* x, float* y, std::int64_t n, bool training) override;
  void backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) override;

 protected:
  Shape do_build(const Shape& input_shape, Rng& rng) override;

 private:
  MaxPooling2DConfig cfg_;
  kernels::ConvGeometry geom_{};
  std::vector<std::int32_t> argmax_;  // per output element: offset of the max within its sample
  bool fuse_relu_backward_ = false;
};

}  // namespace cnnx
