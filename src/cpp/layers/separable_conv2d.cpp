// SeparableConv2D forward and backward side by side.
// Layout: x [n, h, w, cin] -> mid [n*oh*ow, cmid] = depthwise(x, D) (kernels/depthwise_conv.hpp,
// cmid = cin * depth_multiplier, no bias) -> y [n*oh*ow, filters] = act(mid x P + b), one GEMM
// with bias and ReLU in its epilogue. The pointwise kernel P is kept in Keras' (1, 1, cmid,
// filters) order, which is already the row-major [cmid, filters] matrix the GEMM wants.
// Backward: dz = act'(y) * dy in place; dP = mid^T dz, db = column sums of dz, dmid = dz P^T
// (transposes are strides), then the depthwise gradients from dmid. mid is recomputed from x
// rather than kept from forward, so backward depends on nothing but its arguments, and dmid
// then overwrites it in the same workspace.
// Threading: inside the depthwise kernels and the GEMM; both give the same bits on any number
// of threads.
#include "layers/separable_conv2d.hpp"

#include "cnnx/error.hpp"
#include "cnnx/initializers.hpp"
#include "core/parallel_for.hpp"
#include "kernels/activations.hpp"
#include "kernels/depthwise_conv.hpp"
#include "kernels/gemm.hpp"
#include "kernels/reduce.hpp"
#include "layers/depthwise_args.hpp"

namespace cnnx {

SeparableConv2D::SeparableConv2D(std::string name, SeparableConv2DConfig config)
    : Layer(std::move(name)), cfg_(std::move(config)) {
  if (cfg_.filters <= 0)
    throw ValueError(where() +
                     ": expected filters to be a positive integer, received filters=" + std::to_string(cfg_.filters));
  detail::check_depthwise_args(cfg_, where());
  act_ = parse_activation(cfg_.activation, where());
  check_initializer(cfg_.depthwise_initializer, where());
  check_initializer(cfg_.pointwise_initializer, where());
  check_initializer(cfg_.bias_initializer, where());
}

Shape SeparableConv2D::do_build(const Shape& in, Rng& rng) {
  geom_ = detail::depthwise_geometry(cfg_, in, where());
  const auto& g = geom_;
  const std::int64_t dm = cfg_.depth_multiplier;
  mid_channels_ = checked_mul(g.c, dm);
  check_sample_size({g.oh, g.ow, cfg_.filters}, "the output shape");  // before the kernels are allocated
  Param& depthwise = add_param("depthwise_kernel", {g.kh, g.kw, g.c, dm});
  initialize(depthwise.value, cfg_.depthwise_initializer, double(g.kh * g.kw * g.c), double(g.kh * g.kw * dm), rng);
  Param& pointwise = add_param("pointwise_kernel", {1, 1, mid_channels_, cfg_.filters});
  initialize(pointwise.value, cfg_.pointwise_initializer, double(mid_channels_), double(cfg_.filters), rng);
  if (cfg_.use_bias) {
    Param& bias = add_param("bias", {cfg_.filters});
    initialize(bias.value, cfg_.bias_initializer, double(mid_channels_), double(cfg_.filters), rng);
  }
  return {g.oh, g.ow, cfg_.filters};
}

void SeparableConv2D::reserve(std::int64_t batch) { ensure_workspace(batch); }

void SeparableConv2D::ensure_workspace(std::int64_t n) {
  const auto& g = geom_;
  const std::int64_t mid = checked_mul(n, checked_mul(checked_mul(g.oh, g.ow), mid_channels_));
  if (mid_.size() < mid) mid_.resize(mid);
  const std::int64_t threads = get_num_threads();
  if (slots_ < threads) {
    scratch_.resize(checked_mul(threads, kernels::depthwise_slot_floats(g, cfg_.depth_multiplier)));
    slots_ = threads;
  }
  const std::int64_t kernel = kernels::depthwise_kernel_floats(g, cfg_.depth_multiplier);
  if (kernel_scratch_.size() < kernel) kernel_scratch_.resize(kernel);
}

void SeparableConv2D::forward(const float* x, float* y, std::int64_t n, bool training) {
  (void)training;  // backward recomputes the depthwise output
  ensure_workspace(n);
  const auto& g = geom_;
  const std::int64_t dm = cfg_.depth_multiplier, rows = n * g.oh * g.ow, cmid = mid_channels_, cout = cfg_.filters;
  const kernels::DepthwiseScratch ws = detail::depthwise_scratch(g, dm, scratch_, slots_, kernel_scratch_);
  kernels::depthwise_forward(x, n, g, dm, params()[0].value.data(), nullptr, mid_.data(), ws);
  kernels::GemmEpilogue ep;
  ep.bias = cfg_.use_bias ? params()[2].value.data() : nullptr;
  ep.relu = act_ == Activation::relu;
  kernels::gemm(rows, cout, cmid, mid_.data(), cmid, 1, params()[1].value.data(), cout, 1, 0.0f, y, cout, ep);
  if (act_ != Activation::relu && act_ != Activation::linear) kernels::activation_forward(act_, y, rows, cout);
}

void SeparableConv2D::backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) {
  ensure_workspace(n);
  const auto& g = geom_;
  const std::int64_t dm = cfg_.depth_multiplier, rows = n * g.oh * g.ow, cmid = mid_channels_, cout = cfg_.filters;
  if (!output_grad_is_preactivation() && act_ != Activation::linear)
    kernels::activation_backward(act_, y, dy, rows, cout);
  const bool weights = computes_weight_grads();
  if (!weights && !dx) return;
  const kernels::DepthwiseScratch ws = detail::depthwise_scratch(g, dm, scratch_, slots_, kernel_scratch_);
  const float* depthwise = params()[0].value.data();
  const float* pointwise = params()[1].value.data();
  float* mid = mid_.data();
  if (weights) {
    kernels::depthwise_forward(x, n, g, dm, depthwise, nullptr, mid, ws);
    kernels::gemm(cmid, cout, rows, mid, 1, cmid, dy, cout, 1, 0.0f, params()[1].grad.data(), cout);
    if (cfg_.use_bias) kernels::column_sums(dy, rows, cout, params()[2].grad.data());
  }
  // dmid = dz P^T, over mid (read for the last time above).
  kernels::gemm(rows, cmid, cout, dy, cout, 1, pointwise, 1, cout, 0.0f, mid, cmid);
  if (weights) kernels::depthwise_kernel_grad(x, mid, n, g, dm, params()[0].grad.data(), nullptr, ws);
  if (dx) kernels::depthwise_input_grad(mid, n, g, dm, depthwise, dx, ws);
}

// The public factory (cnnx/layers/separable_conv2d.hpp).
std::shared_ptr<Layer> make_separable_conv2d(std::string name, SeparableConv2DConfig config) {
  return std::make_shared<SeparableConv2D>(std::move(name), std::move(config));
}

}  // namespace cnnx
