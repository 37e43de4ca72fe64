// Convolution forward as an implicit GEMM (no im2col panel), for the kernels that have an
// indirect micro-kernel (AVX-512).
//
// Layout: x holds n NHWC images, copied zero-padded into scratch (im2col_scratch_size floats)
// when the geometry pads. Output pixel q's window then starts at one corner of its padded
// image and reads, per kernel row, kw * c
// contiguous floats; the micro-kernel gathers each of its 14 rows through such a pointer, in
// the (ky, kx, ci) order of a Keras kernel flattened to [kh*kw*c, cout]. z = epi(col x K) as
// im2col + gemm would compute it, with the same K blocks, so the results have the same bits.
//
// Tiling: K packed once by the caller (NR = 32 slivers); for each sliver, every 14-pixel tile
// of the n images, K blocks of at most KC as in gemm.cpp. Partial tiles go through an edge
// buffer. Threading: none (one chunk of a batch, inside the caller's parallel loop).
#pragma once

#include <cstdint>

#include "cnnx/conv_geometry.hpp"
#include "kernels/gemm.hpp"

namespace cnnx::kernels {

// Whether conv_forward_implicit handles g with the active kernels: not when they have no
// indirect micro-kernel, when the kernel is dilated along x (its taps are then not contiguous)
// or when a kernel row is shorter than 16 floats (see the definition).
bool conv_implicit_supported(const ConvGeometry& g);

// The kernel [patch, cout] (row-major) packed once for many calls, into NR-wide slivers,
// k-major, zero past cout (gemm_ukernel.hpp's layout): conv_packed_kernel_size floats. Packing
// it in every call (every chunk of a batch) cost 11% of a conv2 forward + backward.
std::int64_t conv_packed_kernel_size(std::int64_t patch, std::int64_t cout);
void conv_pack_kernel(const float* kernel, std::int64_t patch, std::int64_t cout, float* dst);

// False (and nothing written) when !conv_implicit_supported(g): use im2col + gemm instead.
bool conv_forward_implicit(const float* x, std::int64_t n, const ConvGeometry& g, const float* packed_kernel,
                           std::int64_t cout, float* z, const GemmEpilogue& ep, float* scratch);

}  // namespace cnnx::kernels
