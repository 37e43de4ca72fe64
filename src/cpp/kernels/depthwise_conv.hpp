// Depthwise 2-D convolution (Keras' DepthwiseConv2D, and the first half of SeparableConv2D).
//
// Layout: x [n, h, w, c] NHWC; kernel K in Keras' (kh, kw, c, dm) order; y [n, oh, ow, c*dm],
// output channel co = ci*dm + m as in Keras/TF. One tap's kernel slice K[ky, kx, :, :] is then a
// contiguous vector of c*dm floats laid out exactly like a pixel of y, so every inner loop is
// `out[co] += a[co] * b[co]` over contiguous channels, which the compiler vectorises (no
// intrinsics). With dm > 1 an input row is first repeated channel-wise (x_e[ix, ci*dm + m] =
// x[ix, ci]) into a per-slot scratch row, so the same loop serves; dx is accumulated in that
// expanded form and folded back (sum over m) at the end of each row.
//
// Loop order: per row, tap (ky, kx) outer, output pixel, channel inner. A row of y (ow * c*dm
// floats) stays in L1/L2 while the kh*kw taps add into it; the valid pixel range of each tap
// is computed up front, so padding costs no branches and no padded copy.
//
// Threading (one OpenMP level, parallel_for): the work is cut into "slots" (at most the thread
// count and the scratch the caller sized), each a contiguous block of rows with its own scratch.
// Forward runs over output rows (b, oy), the input gradient over input rows (b, iy) as a gather
// (each dx row collects the taps that reach it), so no two slots write the same element. The
// kernel gradient sums into fixed per-chunk partials (the chunks depend only on the batch and
// the geometry, never on the thread count) which are then added in chunk order: every result
// is bit-identical on any number of threads.
#pragma once

#include <cstdint>

#include "cnnx/conv_geometry.hpp"

namespace cnnx::kernels {

// The most chunks the kernel gradient is split into (the partials the caller provides).
constexpr std::int64_t kDepthwiseGradChunks = 16;

// Per-slot scratch: the base pointer, floats per slot and the number of slots available.
struct DepthwiseScratch {
  float* data = nullptr;
  std::int64_t slot_floats = 0;
  std::int64_t slots = 1;
};

// Floats one slot needs (0 when dm == 1), checked: SizeError on overflow.
std::int64_t depthwise_slot_floats(const ConvGeometry& g, std::int64_t dm);
// Floats of the kernel-gradient partials, checked.
std::int64_t depthwise_partial_floats(const ConvGeometry& g, std::int64_t dm);

// y = depthwise(x, K) (+ bias per output channel, added after the taps' sum as Keras does;
// bias may be null). g.c is the input channels, g.oh/g.ow the output size.
void depthwise_forward(const float* x, std::int64_t n, const ConvGeometry& g, std::int64_t dm, const float* kernel,
                       const float* bias, float* y, const DepthwiseScratch& ws);
// dx = dL/dx from dz = dL/d(pre-activation output).
void depthwise_input_grad(const float* dz, std::int64_t n, const ConvGeometry& g, std::int64_t dm, const float* kernel,
                          float* dx, const DepthwiseScratch& ws);
// dkernel = dL/dK (overwritten), through `partials` (depthwise_partial_floats floats).
void depthwise_kernel_grad(const float* x, const float* dz, std::int64_t n, const ConvGeometry& g, std::int64_t dm,
                           float* dkernel, float* partials, const DepthwiseScratch& ws);

}  // namespace cnnx::kernels
