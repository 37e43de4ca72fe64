// Depthwise 2-D convolution (Keras' DepthwiseConv2D, and the first half of SeparableConv2D).
//
// Layout: x [n, h, w, c] NHWC; kernel K in Keras' (kh, kw, c, dm) order; y [n, oh, ow, c*dm],
// output channel co = ci*dm + m as in Keras/TF. One tap's kernel slice K[ky, kx, :, :] is then a
// contiguous vector of c*dm floats laid out exactly like a pixel of y, so every inner loop is
// `out[co] += a[co] * b[co]` over contiguous channels, which the compiler vectorises (no
// intrinsics). With dm > 1 the input rows are first repeated channel-wise (x_e[ix, ci*dm + m] =
// x[ix, ci]) into per-slot scratch, so the same loop serves; dx is formed in that expanded form
// and folded back (sum over m) at the end of each row.
//
// Loop order: per row, per output pixel, channels kBlock (16) at a time: a block's sum stays in
// registers while the pixel's kh*kw taps add into it, so only the two operands stream from L1.
// The valid taps of each pixel are computed up front (no padded copy, no per-tap branch). The
// kernel gradient runs per tap and channel block over a row's pixels, the sum again in
// registers. The input gradient is, for stride 1, the forward convolution of dz with the kernel
// flipped (the same code); for larger strides a gather over the taps that reach each pixel.
// The multiply-adds are compiled per vector width (vector_clones.hpp) with fp-contract off, so
// every CPU gives the same bits.
//
// Threading (one OpenMP level, parallel_for): the work is cut into "slots" (at most the thread
// count and the scratch the caller sized), each a contiguous block of rows with its own scratch.
// Forward runs over output rows (b, oy), the input gradient over input rows (b, iy), so no two
// slots write the same element. The kernel gradient sums into fixed per-chunk partials (the
// chunks depend only on the batch and the geometry, never on the thread count), then adds them
// in chunk order: every result is bit-identical on any number of threads.
#pragma once

#include <cstdint>

#include "kernels/conv_geometry.hpp"

namespace cnnx::kernels {

// The most chunks the kernel gradient is split into.
constexpr std::int64_t kDepthwiseGradChunks = 16;

// Workspace, sized by the caller: `slots` per-thread scratch areas of `slot_floats` floats at
// `rows`, and `kernel`, depthwise_kernel_floats floats (the per-chunk partials of the kernel
// and bias gradients, or the flipped kernel of the input gradient).
struct DepthwiseScratch {
  float* rows = nullptr;
  std::int64_t slot_floats = 0;
  std::int64_t slots = 1;
  float* kernel = nullptr;
};

// Floats one slot needs (0 when dm == 1), and those of `kernel`; checked: SizeError on overflow.
std::int64_t depthwise_slot_floats(const ConvGeometry& g, std::int64_t dm);
std::int64_t depthwise_kernel_floats(const ConvGeometry& g, std::int64_t dm);

// y = depthwise(x, K) (+ bias per output channel, added after the taps' sum as Keras does;
// bias may be null). g.c is the input channels, g.oh/g.ow the output size. Keras' rule holds:
// strides > 1 only with dilation 1.
void depthwise_forward(const float* x, std::int64_t n, const ConvGeometry& g, std::int64_t dm, const float* kernel,
                       const float* bias, float* y, const DepthwiseScratch& ws);
// dx = dL/dx from dz = dL/d(pre-activation output).
void depthwise_input_grad(const float* dz, std::int64_t n, const ConvGeometry& g, std::int64_t dm, const float* kernel,
                          float* dx, const DepthwiseScratch& ws);
// dkernel = dL/dK and, unless dbias is null, dbias = dL/db = the sums of dz per channel
// (overwritten).
void depthwise_kernel_grad(const float* x, const float* dz, std::int64_t n, const ConvGeometry& g, std::int64_t dm,
                           float* dkernel, float* dbias, const DepthwiseScratch& ws);

}  // namespace cnnx::kernels
