// Conv2D: Keras' keras.layers.Conv2D on NHWC input, as GEMMs over chunks of images (conv2d.cpp),
// with the route planned per batch size (Conv2DPlan).
#pragma once

#include <cstdint>
#include <vector>

#include "cnnx/layer.hpp"
#include "cnnx/layers/conv2d.hpp"
#include "cnnx/tensor.hpp"
#include "kernels/conv_geometry.hpp"

namespace cnnx {

// How a Conv2D runs one batch size: chosen once per (batch size, ISA, threads, fused pool,
// trainability) by Conv2D::make_plan, then followed by forward and backward, which allocate
// nothing once reserve() has seen the batch size. Create -> plan(shapes) -> run, as XNNPACK
// operators do: the choices and the workspace they need are fixed (and inspectable) before
// the first call rather than re-derived inside it.
enum class ConvAlgorithm : std::uint8_t {
  none,           // nothing to compute (the weight gradient of a frozen layer)
  im2col_gemm,    // an im2col panel per chunk and one GEMM; for dX: dcol = dz K^T, then col2im
  implicit_gemm,  // windows read from the zero-padded images by an indirect micro-kernel (AVX-512)
  direct_1x1,     // 1x1, stride 1, unpadded: x itself is the column matrix
};
enum class BiasGradRoute : std::uint8_t {
  none,             // no bias, or frozen
  gemm_row,         // a row of ones in the im2col panel: db is one more row of the dK GEMM
  weight_grad_row,  // the spare row of the implicit weight-gradient kernel's partial slice
  column_sums,      // a separate pass: column sums of each chunk's dz
};
const char* conv_algorithm_name(ConvAlgorithm a);
const char* bias_grad_route_name(BiasGradRoute r);

struct Conv2DPlan {
  // What the plan was made for (compared on every call; a change re-plans).
  std::int64_t batch = 0;
  int isa = -1;  // kernels::Isa
  int threads = 0;
  bool weight_grads = false, fused_pool = false, preactivation = false;

  ConvAlgorithm forward = ConvAlgorithm::none, weight_grad = ConvAlgorithm::none, input_grad = ConvAlgorithm::none;
  BiasGradRoute bias_grad = BiasGradRoute::none;
  // dz is written once, zero-padded (ReLU derivative applied), and both the dX convolution and
  // the weight gradient read it there (implicit dX and dK only).
  bool shared_padded_dz = false;
  const char* isa_name = "";
  std::int64_t chunk_images = 0, chunks = 0, chunks_per_group = 0, groups = 0;
  bool single_chunk() const { return chunks == 1; }  // the threads go into the kernels instead
  std::int64_t panel_threads = 0;                    // per-thread workspaces
  std::int64_t col_stride = 0;                       // im2col panel row stride (patch, + 1 for the bias row)
  std::int64_t grad_rows = 0;                        // rows of a weight-gradient partial (+ the bias row)
  // Workspace floats: per thread, then shared.
  std::int64_t col = 0, pad = 0, dzpad = 0, z = 0;
  std::int64_t dw_partial = 0, db_partial = 0, packed_kernel = 0, kernel_t = 0;
  std::int64_t workspace_floats() const;
};

class Conv2D : public Layer {
 public:
  Conv2D(std::string name, Conv2DConfig config);  // validates config; throws ValueError
  std::string class_name() const override { return "Conv2D"; }
  std::shared_ptr<Layer> clone() const override { return make_clone(*this); }
  const Conv2DConfig& config() const { return cfg_; }
  Activation activation() const override { return act_; }

  void reserve(std::int64_t batch) override;
  // The plan for a batch of n with the current ISA, threads and fusion (nothing allocated).
  // Throws ValueError when a forced algorithm does not apply to this layer.
  Conv2DPlan make_plan(std::int64_t batch) const;
  // What reserve(batch) allocates: the plan of `batch` and that of the largest one-chunk batch,
  // whose route may differ (see reserve()).
  std::int64_t workspace_floats(std::int64_t batch) const override;
  std::int64_t allocated_workspace_floats() const override;
  // Tests only: run these algorithms instead of the planner's choice (ConvAlgorithm::none:
  // the planner's). A forced algorithm that cannot run this geometry on the active ISA makes
  // planning throw ValueError.
  void force_algorithms(ConvAlgorithm forward, ConvAlgorithm weight_grad, ConvAlgorithm input_grad);
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
  kernels::ConvGeometry transposed_geometry() const;
  // The plan for n (plan_ when it still fits, else a new one, its workspace grown).
  const Conv2DPlan& plan_for(std::int64_t n);
  void ensure_workspace(const Conv2DPlan& p);
  void run_forward(const float* x, std::int64_t n, float* out, std::int32_t* argmax, const kernels::ConvGeometry* pool);
  // y: when not null, dz still needs the activation's derivative, taken from y chunk by chunk
  // into the per-thread scratch z_ (dz itself is left as it was).
  void run_backward(const float* x, const float* dz, const float* pooled, const std::int32_t* argmax, float* dx,
                    std::int64_t n, const kernels::ConvGeometry* pool, const float* y = nullptr);
  const kernels::ConvGeometry* pool_ = nullptr;
  Conv2DPlan plan_;  // the last batch size's plan
  ConvAlgorithm forced_[3] = {ConvAlgorithm::none, ConvAlgorithm::none, ConvAlgorithm::none};
  std::vector<Buffer> z_;  // per-thread scratch of one chunk's output or its gradient
  // Per-thread im2col panels for one chunk of images, sized to stay in L2 (see conv2d.cpp).
  std::vector<Buffer> col_;    // also holds dL/dcol in backward, once col has been used
  std::vector<Buffer> pad_;    // per-thread zero-padded copy of a chunk's images (kernels/im2col.hpp)
  std::vector<Buffer> dzpad_;  // per-thread zero-padded copy of a chunk's dz (transposed_geometry)
  // Weight-gradient partials per group of chunks (with the bias row on the im2col path, see
  // Conv2DPlan::col_stride), and bias-gradient partials per chunk on the other paths; both
  // summed in order.
  Buffer dw_partial_, db_partial_;
  // For the input gradient on the im2col path: the kernel transposed, [cout, kh*kw*cin].
  Buffer kernel_t_;
  // The kernel (forward) or its flipped transpose (input gradient) packed for the implicit GEMM
  // once per batch; read by every thread.
  Buffer packed_kernel_;
};

}  // namespace cnnx
