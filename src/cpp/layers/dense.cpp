// Dense forward, backward side by side. Layout: x [rows, in] with rows = n * (all sample dims
// but the last); kernel (in, units) as in Keras, which is the row-major [K, N] GEMM operand.
// y = act(x W + b) (bias and ReLU in the GEMM epilogue), dW = x^T dz, db = sum_rows dz,
// dx = dz W^T -- transposes are strides, not copies. Threading: inside the GEMM.
#include "layers/dense.hpp"

#include "cnnx/error.hpp"
#include "cnnx/initializers.hpp"
#include "kernels/activations.hpp"
#include "kernels/gemm.hpp"
#include "kernels/reduce.hpp"

namespace cnnx {

Dense::Dense(std::string name, DenseConfig config) : Layer(std::move(name)), cfg_(std::move(config)) {
  if (cfg_.units <= 0)
    throw ValueError(where() +
                     ": expected units to be a positive integer, received units=" + std::to_string(cfg_.units));
  act_ = parse_activation(cfg_.activation, where());
  check_initializer(cfg_.kernel_initializer, where());
  check_initializer(cfg_.bias_initializer, where());
}

Shape Dense::do_build(const Shape& in, Rng& rng) {
  if (in.empty()) throw ValueError(where() + ": expected input of rank >= 2 (batch, features), received shape (None,)");
  in_features_ = in.back();
  rows_per_sample_ = shape_size(in) / in_features_;
  Shape out = in;
  out.back() = cfg_.units;
  check_sample_size(out, "the output shape");  // before the kernel is allocated
  Param& kernel = add_param("kernel", {in_features_, cfg_.units});
  initialize(kernel.value, cfg_.kernel_initializer, double(in_features_), double(cfg_.units), rng);
  if (cfg_.use_bias) {
    Param& bias = add_param("bias", {cfg_.units});
    initialize(bias.value, cfg_.bias_initializer, double(in_features_), double(cfg_.units), rng);
  }
  return out;
}

void Dense::forward(const float* x, float* y, std::int64_t n, bool training) {
  (void)training;
  const std::int64_t rows = n * rows_per_sample_, units = cfg_.units;
  kernels::GemmEpilogue ep;
  ep.bias = cfg_.use_bias ? params()[1].value.data() : nullptr;
  ep.relu = act_ == Activation::relu;
  kernels::gemm(rows, units, in_features_, x, in_features_, 1, params()[0].value.data(), units, 1, 0.0f, y, units, ep);
  if (act_ != Activation::relu) kernels::activation_forward(act_, y, rows, units);
}

void Dense::backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) {
  const std::int64_t rows = n * rows_per_sample_, units = cfg_.units;
  if (!output_grad_is_preactivation()) kernels::activation_backward(act_, y, dy, rows, units);
  if (computes_weight_grads()) {  // a frozen layer only passes the input gradient on
    kernels::gemm(in_features_, units, rows, x, 1, in_features_, dy, units, 1, 0.0f, params()[0].grad.data(), units);
    if (cfg_.use_bias) kernels::column_sums(dy, rows, units, params()[1].grad.data());
  }
  if (dx)
    kernels::gemm(rows, in_features_, units, dy, units, 1, params()[0].value.data(), 1, units, 0.0f, dx, in_features_);
}

// The public factory (cnnx/layers/dense.hpp).
std::shared_ptr<Layer> make_dense(std::string name, DenseConfig config) {
  return std::make_shared<Dense>(std::move(name), std::move(config));
}

}  // namespace cnnx
