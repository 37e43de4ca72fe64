// Argument checks and geometry shared by DepthwiseConv2D and SeparableConv2D (private).
#pragma once

#include <string>

#include "cnnx/error.hpp"
#include "cnnx/tensor.hpp"
#include "kernels/conv_geometry.hpp"
#include "kernels/depthwise_conv.hpp"

namespace cnnx::detail {

inline std::string int_pair(std::int64_t a, std::int64_t b) {
  return "(" + std::to_string(a) + ", " + std::to_string(b) + ")";
}

// Keras' constructor checks, with cnnx's "expected ..., received ..." messages.
template <class Config>
void check_depthwise_args(const Config& c, const std::string& where) {
  if (c.depth_multiplier <= 0)
    throw ValueError(where + ": expected depth_multiplier to be a positive integer, received depth_multiplier=" +
                     std::to_string(c.depth_multiplier));
  if (c.kernel_h <= 0 || c.kernel_w <= 0)
    throw ValueError(where +
                     ": expected positive kernel_size, received kernel_size=" + int_pair(c.kernel_h, c.kernel_w));
  if (c.stride_h <= 0 || c.stride_w <= 0)
    throw ValueError(where + ": expected positive strides, received strides=" + int_pair(c.stride_h, c.stride_w));
  if (c.dilation_h <= 0 || c.dilation_w <= 0)
    throw ValueError(
        where + ": expected positive dilation_rate, received dilation_rate=" + int_pair(c.dilation_h, c.dilation_w));
  if ((c.stride_h > 1 || c.stride_w > 1) && (c.dilation_h > 1 || c.dilation_w > 1))
    throw ValueError(where +
                     ": strides > 1 cannot be combined with dilation_rate > 1 (as in Keras), received strides=" +
                     int_pair(c.stride_h, c.stride_w) + ", dilation_rate=" + int_pair(c.dilation_h, c.dilation_w));
  if (c.padding != "valid" && c.padding != "same")
    throw ValueError(where + ": expected padding 'valid' or 'same', received padding='" + c.padding + "'");
}

// The depthwise step's geometry for a (h, w, c) sample, with its output checked: ValueError for
// an input smaller than the kernel, SizeError for sizes past the core's limits (also those of
// the kernels' workspaces, so that reserve() cannot be the first to overflow).
template <class Config>
kernels::ConvGeometry depthwise_geometry(const Config& c, const Shape& in, const std::string& where) {
  if (in.size() != 3)
    throw ValueError(where + ": expected input of rank 4 (batch, height, width, channels), received shape " +
                     batch_shape_str(in));
  kernels::ConvGeometry g{};
  g.h = in[0], g.w = in[1], g.c = in[2];
  g.kh = c.kernel_h, g.kw = c.kernel_w;
  g.sh = c.stride_h, g.sw = c.stride_w;
  g.dh = c.dilation_h, g.dw = c.dilation_w;
  const bool same = c.padding == "same";
  kernels::window_axis(g.h, g.kh, g.sh, g.dh, same, &g.oh, &g.pad_top);
  kernels::window_axis(g.w, g.kw, g.sw, g.dw, same, &g.ow, &g.pad_left);
  if (g.oh <= 0 || g.ow <= 0)
    throw ValueError(where + ": input " + shape_str({-1, g.h, g.w, g.c}) + " is smaller than the kernel " +
                     shape_str({g.kh, g.kw}) + " with padding='valid'; expected height >= " +
                     std::to_string(g.dh * (g.kh - 1) + 1) + " and width >= " + std::to_string(g.dw * (g.kw - 1) + 1));
  check_sample_size({g.oh, g.ow, checked_mul(g.c, c.depth_multiplier)}, "the depthwise output shape");
  try {
    (void)kernels::depthwise_slot_floats(g, c.depth_multiplier);
    (void)kernels::depthwise_kernel_floats(g, c.depth_multiplier);
  } catch (const SizeError& e) {
    throw SizeError("the workspace for kernel_size=" + shape_str({g.kh, g.kw}) +
                    ", depth_multiplier=" + std::to_string(c.depth_multiplier) + " on input " + batch_shape_str(in) +
                    " is too large: " + e.what());
  }
  return g;
}

// The kernels' view of a layer's workspaces.
inline kernels::DepthwiseScratch depthwise_scratch(const kernels::ConvGeometry& g, std::int64_t dm, Buffer& rows,
                                                   std::int64_t slots, Buffer& kernel) {
  return {rows.data(), kernels::depthwise_slot_floats(g, dm), slots, kernel.data()};
}

}  // namespace cnnx::detail
