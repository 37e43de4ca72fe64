// Conv2D: Keras' keras.layers.Conv2D on NHWC input, as im2col + one GEMM per batch.
#pragma once

#include <vector>

#include "cnnx/conv_geometry.hpp"
#include "cnnx/layer.hpp"
#include "cnnx/tensor.hpp"

namespace cnnx {

struct Conv2DConfig {
  std::int64_t filters = 0;
  std::int64_t kernel_h = 3, kernel_w = 3;
  std::int64_t stride_h = 1, stride_w = 1;
  std::int64_t dilation_h = 1, dilation_w = 1;
  std::string padding = "valid";  // "valid" or "same" (TensorFlow's: extra pad bottom/right)
  std::string activation = "linear";
  bool use_bias = true;
  std::string kernel_initializer = "glorot_uniform";
  std::string bias_initializer = "zeros";
};

class Conv2D : public Layer {
 public:
  Conv2D(std::string name, Conv2DConfig config);  // validates config; throws ValueError
  std::string class_name() const override { return "Conv2D"; }
  const Conv2DConfig& config() const { return cfg_; }
  Activation activation() const override { return act_; }

  void reserve(std::int64_t batch) override;
  void forward(const float* x, float* y, std::int64_t n, bool training) override;
  void backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) override;

 protected:
  Shape do_build(const Shape& input_shape, Rng& rng) override;

 private:
  Conv2DConfig cfg_;
  Activation act_;
  kernels::ConvGeometry geom_{};
  std::int64_t chunk_images() const;
  void ensure_workspace(std::int64_t n);
  // Per-thread im2col panels for one chunk of images, sized to stay in L2 (see conv2d.cpp).
  std::vector<Buffer> col_, dcol_;
  // Per-chunk weight and bias gradient partials, summed in chunk order.
  Buffer dw_partial_, db_partial_;
};

}  // namespace cnnx
