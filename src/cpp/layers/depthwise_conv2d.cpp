// DepthwiseConv2D forward and backward side by side. The compute is in
// kernels/depthwise_conv.hpp (layout, loop order, threading); here: which gradients to form and
// the fused activation. y = act(depthwise(x, K) + b); backward: dz = act'(y) * dy in place
// (unless the model already hands over dL/dz), dK and db = column sums of dz in one pass over
// x and dz, dx the transposed depthwise convolution of dz.
#include "layers/depthwise_conv2d.hpp"

#include "cnnx/error.hpp"
#include "cnnx/initializers.hpp"
#include "core/parallel_for.hpp"
#include "kernels/activations.hpp"
#include "kernels/depthwise_conv.hpp"
#include "layers/depthwise_args.hpp"

namespace cnnx {

DepthwiseConv2D::DepthwiseConv2D(std::string name, DepthwiseConv2DConfig config)
    : Layer(std::move(name)), cfg_(std::move(config)) {
  detail::check_depthwise_args(cfg_, where());
  act_ = parse_activation(cfg_.activation, where());
  check_initializer(cfg_.depthwise_initializer, where());
  check_initializer(cfg_.bias_initializer, where());
}

Shape DepthwiseConv2D::do_build(const Shape& in, Rng& rng) {
  geom_ = detail::depthwise_geometry(cfg_, in, where());
  const auto& g = geom_;
  const std::int64_t dm = cfg_.depth_multiplier, cout = checked_mul(g.c, dm);
  Param& kernel = add_param("kernel", {g.kh, g.kw, g.c, dm});
  // Keras' fans for a (kh, kw, cin, dm) kernel: receptive field times its last two axes.
  const double fan_in = double(g.kh * g.kw * g.c), fan_out = double(g.kh * g.kw * dm);
  initialize(kernel.value, cfg_.depthwise_initializer, fan_in, fan_out, rng);
  if (cfg_.use_bias) {
    Param& bias = add_param("bias", {cout});
    initialize(bias.value, cfg_.bias_initializer, fan_in, fan_out, rng);
  }
  return {g.oh, g.ow, cout};
}

// The workspaces depend on the thread count, not on the batch: scratch rows per thread
// (dm > 1 only) and the kernel-sized scratch (gradient partials, flipped kernel).
void DepthwiseConv2D::reserve(std::int64_t batch) {
  (void)batch;
  ensure_workspace();
}

void DepthwiseConv2D::ensure_workspace() {
  const std::int64_t threads = get_num_threads();
  if (slots_ < threads) {
    scratch_.resize(checked_mul(threads, kernels::depthwise_slot_floats(geom_, cfg_.depth_multiplier)));
    slots_ = threads;
  }
  const std::int64_t kernel = kernels::depthwise_kernel_floats(geom_, cfg_.depth_multiplier);
  if (kernel_scratch_.size() < kernel) kernel_scratch_.resize(kernel);
}

void DepthwiseConv2D::forward(const float* x, float* y, std::int64_t n, bool training) {
  (void)training;  // backward needs only x and y
  ensure_workspace();
  const auto& g = geom_;
  const std::int64_t dm = cfg_.depth_multiplier, cout = g.c * dm;
  const kernels::DepthwiseScratch ws = detail::depthwise_scratch(g, dm, scratch_, slots_, kernel_scratch_);
  kernels::depthwise_forward(x, n, g, dm, params()[0].value.data(), cfg_.use_bias ? params()[1].value.data() : nullptr,
                             y, ws);
  if (act_ != Activation::linear) kernels::activation_forward(act_, y, n * g.oh * g.ow, cout);
}

void DepthwiseConv2D::backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) {
  ensure_workspace();
  const auto& g = geom_;
  const std::int64_t dm = cfg_.depth_multiplier, cout = g.c * dm, rows = n * g.oh * g.ow;
  if (!output_grad_is_preactivation() && act_ != Activation::linear)
    kernels::activation_backward(act_, y, dy, rows, cout);
  const kernels::DepthwiseScratch ws = detail::depthwise_scratch(g, dm, scratch_, slots_, kernel_scratch_);
  if (computes_weight_grads()) {
    kernels::depthwise_kernel_grad(x, dy, n, g, dm, params()[0].grad.data(),
                                   cfg_.use_bias ? params()[1].grad.data() : nullptr, ws);
  }
  if (dx) kernels::depthwise_input_grad(dy, n, g, dm, params()[0].value.data(), dx, ws);
}

// The public factory (cnnx/layers/depthwise_conv2d.hpp).
std::shared_ptr<Layer> make_depthwise_conv2d(std::string name, DepthwiseConv2DConfig config) {
  return std::make_shared<DepthwiseConv2D>(std::move(name), std::move(config));
}

}  // namespace cnnx
