// Conv2D forward, backward and weight layout side by side.
// Layout: x [n, h, w, cin] -> col [n*oh*ow, kh*kw*cin] (im2col) -> y = col x K + b, with the
// kernel K kept in Keras' (kh, kw, cin, cout) order, which is already the row-major
// [kh*kw*cin, cout] matrix the GEMM wants. y [n*oh*ow, cout] is NHWC with no reshuffle.
// Backward: dK = col^T x dz, db = column sums of dz, dcol = dz x K^T, dx = col2im(dcol); the
// transposes are strides into the same buffers (see kernels/gemm.hpp), never copies.
// Bias and ReLU are fused into the GEMM's tile stores (kernels::GemmEpilogue).
// Threading: inside im2col/col2im and the GEMM (one OpenMP level).
// Workspace: col_ and dcol_ are sized once per batch size by reserve(); 1x1 stride-1 unpadded
// convolutions skip im2col and read x directly.
#include "cnnx/layers/conv2d.hpp"

#include <cstring>

#include "cnnx/error.hpp"
#include "cnnx/initializers.hpp"
#include "kernels/activations.hpp"
#include "kernels/gemm.hpp"
#include "kernels/im2col.hpp"
#include "kernels/reduce.hpp"

namespace cnnx {

Conv2D::Conv2D(std::string name, Conv2DConfig config) : Layer(std::move(name)), cfg_(std::move(config)) {
  auto pair = [](std::int64_t a, std::int64_t b) { return "(" + std::to_string(a) + ", " + std::to_string(b) + ")"; };
  if (cfg_.filters <= 0)
    throw ValueError(where() + ": expected filters to be a positive integer, received filters=" +
                     std::to_string(cfg_.filters));
  if (cfg_.kernel_h <= 0 || cfg_.kernel_w <= 0)
    throw ValueError(where() + ": expected positive kernel_size, received kernel_size=" +
                     pair(cfg_.kernel_h, cfg_.kernel_w));
  if (cfg_.stride_h <= 0 || cfg_.stride_w <= 0)
    throw ValueError(where() + ": expected positive strides, received strides=" +
                     pair(cfg_.stride_h, cfg_.stride_w));
  if (cfg_.dilation_h <= 0 || cfg_.dilation_w <= 0)
    throw ValueError(where() + ": expected positive dilation_rate, received dilation_rate=" +
                     pair(cfg_.dilation_h, cfg_.dilation_w));
  if ((cfg_.stride_h > 1 || cfg_.stride_w > 1) && (cfg_.dilation_h > 1 || cfg_.dilation_w > 1))
    throw ValueError(where() + ": strides > 1 cannot be combined with dilation_rate > 1 (as in Keras), received strides=" +
                     pair(cfg_.stride_h, cfg_.stride_w) + ", dilation_rate=" + pair(cfg_.dilation_h, cfg_.dilation_w));
  if (cfg_.padding != "valid" && cfg_.padding != "same")
    throw ValueError(where() + ": expected padding 'valid' or 'same', received padding='" + cfg_.padding + "'");
  act_ = parse_activation(cfg_.activation, where());
  check_initializer(cfg_.kernel_initializer, where());
  check_initializer(cfg_.bias_initializer, where());
}

Shape Conv2D::do_build(const Shape& in, Rng& rng) {
  if (in.size() != 3)
    throw ValueError(where() + ": expected input of rank 4 (batch, height, width, channels), received shape " +
                     shape_str([&] { Shape s{-1}; s.insert(s.end(), in.begin(), in.end()); return s; }()));
  auto& g = geom_;
  g.h = in[0]; g.w = in[1]; g.c = in[2];
  g.kh = cfg_.kernel_h; g.kw = cfg_.kernel_w;
  g.sh = cfg_.stride_h; g.sw = cfg_.stride_w;
  g.dh = cfg_.dilation_h; g.dw = cfg_.dilation_w;
  const bool same = cfg_.padding == "same";
  kernels::window_axis(g.h, g.kh, g.sh, g.dh, same, &g.oh, &g.pad_top);
  kernels::window_axis(g.w, g.kw, g.sw, g.dw, same, &g.ow, &g.pad_left);
  if (g.oh <= 0 || g.ow <= 0)
    throw ValueError(where() + ": input " + shape_str({-1, g.h, g.w, g.c}) + " is smaller than the kernel " +
                     shape_str({g.kh, g.kw}) + " with padding='valid'; expected height >= " +
                     std::to_string(g.dh * (g.kh - 1) + 1) + " and width >= " + std::to_string(g.dw * (g.kw - 1) + 1));
  Param& kernel = add_param("kernel", {g.kh, g.kw, g.c, cfg_.filters});
  const double fan_in = double(g.kh * g.kw * g.c), fan_out = double(g.kh * g.kw * cfg_.filters);
  initialize(kernel.value, cfg_.kernel_initializer, fan_in, fan_out, rng);
  if (cfg_.use_bias) {
    Param& bias = add_param("bias", {cfg_.filters});
    initialize(bias.value, cfg_.bias_initializer, fan_in, fan_out, rng);
  }
  return {g.oh, g.ow, cfg_.filters};
}

void Conv2D::reserve(std::int64_t batch) {
  const auto& g = geom_;
  if (g.is_identity()) return;
  col_.resize(batch * g.oh * g.ow * g.patch());
  dcol_.resize(batch * g.oh * g.ow * g.patch());
}

void Conv2D::forward(const float* x, float* y, std::int64_t n, bool training) {
  (void)training;
  const auto& g = geom_;
  const std::int64_t rows = n * g.oh * g.ow, patch = g.patch(), cout = cfg_.filters;
  const float* col = x;
  if (!g.is_identity()) {
    if (col_.size() < rows * patch) col_.resize(rows * patch);  // first use at a new batch size
    kernels::im2col_nhwc(x, n, g, col_.data());
    col = col_.data();
  }
  // Bias and ReLU are applied by the GEMM to each tile as it is finished, while it is in L1.
  kernels::GemmEpilogue ep;
  ep.bias = cfg_.use_bias ? params()[1].value.data() : nullptr;
  ep.relu = act_ == Activation::relu;
  kernels::gemm(rows, cout, patch, col, patch, 1, params()[0].value.data(), cout, 1, 0.0f, y, cout, ep);
  if (act_ != Activation::relu) kernels::activation_forward(act_, y, rows, cout);
}

void Conv2D::backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) {
  const auto& g = geom_;
  const std::int64_t rows = n * g.oh * g.ow, patch = g.patch(), cout = cfg_.filters;
  if (!dy_is_preactivation_) kernels::activation_backward(act_, y, dy, rows, cout);
  // col_ still holds im2col(x) from the forward of this batch.
  const float* col = g.is_identity() ? x : col_.data();
  kernels::gemm(patch, cout, rows, col, 1, patch, dy, cout, 1, 0.0f, params()[0].grad.data(), cout);
  if (cfg_.use_bias) kernels::column_sums(dy, rows, cout, params()[1].grad.data());
  if (!dx) return;
  const float* kernel = params()[0].value.data();
  if (g.is_identity()) {
    kernels::gemm(rows, patch, cout, dy, cout, 1, kernel, 1, cout, 0.0f, dx, patch);
    return;
  }
  if (dcol_.size() < rows * patch) dcol_.resize(rows * patch);
  kernels::gemm(rows, patch, cout, dy, cout, 1, kernel, 1, cout, 0.0f, dcol_.data(), patch);
  kernels::col2im_nhwc(dcol_.data(), n, g, dx);
}

}  // namespace cnnx
