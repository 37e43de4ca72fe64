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
  std::shared_ptr<Layer> clone() const override { return make_clone(*this); }
  const Conv2DConfig& config() const { return cfg_; }
  Activation activation() const override { return act_; }

  void reserve(std::int64_t batch) override;
  void forward(const float* x, float* y, std::int64_t n, bool training) override;
  void backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) override;

  // Fusion with a following max-pooling layer (set by the model; nullptr undoes it). Each
  // chunk's convolution output then goes straight from L2 into the pooling kernel and never
  // reaches memory; likewise its gradient in backward. Only for ReLU or linear activations,
  // whose derivative the pooled output determines.
  void set_fused_pool(const kernels::ConvGeometry* pool);
  void forward_pooled(const float* x, std::int64_t n, float* pooled, std::int32_t* argmax);
  void backward_pooled(const float* x, const float* pooled, const float* dpooled, const std::int32_t* argmax, float* dx,
                       std::int64_t n);

 protected:
  Shape do_build(const Shape& input_shape, Rng& rng) override;

 private:
  Conv2DConfig cfg_;
  Activation act_;
  kernels::ConvGeometry geom_{};
  std::int64_t chunk_images() const;
  std::int64_t col_stride() const;
  kernels::ConvGeometry transposed_geometry() const;
  static std::int64_t chunks_per_group(std::int64_t chunks);
  static std::int64_t chunk_groups(std::int64_t chunks);
  std::int64_t grad_rows() const;
  void ensure_workspace(std::int64_t n);
  void run_forward(const float* x, std::int64_t n, float* out, std::int32_t* argmax, const kernels::ConvGeometry* pool);
  // y: when not null, dz still needs the activation's derivative, taken from y chunk by chunk
  // into the per-thread scratch z_ (dz itself is left as it was).
  void run_backward(const float* x, const float* dz, const float* pooled, const std::int32_t* argmax, float* dx,
                    std::int64_t n, const kernels::ConvGeometry* pool, const float* y = nullptr);
  const kernels::ConvGeometry* pool_ = nullptr;
  std::vector<Buffer> z_;  // per-thread scratch of one chunk's output or its gradient
  // Per-thread im2col panels for one chunk of images, sized to stay in L2 (see conv2d.cpp).
  std::vector<Buffer> col_;    // also holds dL/dcol in backward, once col has been used
  std::vector<Buffer> pad_;    // per-thread zero-padded copy of a chunk's images (kernels/im2col.hpp)
  std::vector<Buffer> dzpad_;  // per-thread zero-padded copy of a chunk's dz (transposed_geometry)
  // Weight-gradient partials per group of chunks (with the bias row on the im2col path, see
  // col_stride), and bias-gradient partials per chunk on the other paths; both summed in order.
  Buffer dw_partial_, db_partial_;
  // For the input gradient on the im2col path: the kernel transposed, [cout, kh*kw*cin].
  Buffer kernel_t_;
  // The kernel (forward) or its flipped transpose (input gradient) packed for the implicit GEMM
  // once per batch; read by every thread.
  Buffer packed_kernel_;
};

}  // namespace cnnx
