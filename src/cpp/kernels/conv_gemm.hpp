// Convolution forward as an implicit GEMM (no im2col panel), for the kernels that have an
// indirect micro-kernel (AVX-512).
//
// Layout: x holds n NHWC images, copied zero-padded into scratch (im2col_scratch_size floats)
// when the geometry pads. Output pixel q's window then starts at one corner of its padded
// image and reads, per kernel row, kw * c contiguous floats; the micro-kernel gathers each of its 14 rows through such
// a pointer, in the (ky, kx, ci) order of a Keras kernel flattened to [kh*kw*c, cout]. z = epi(col x K) as im2col +
// gemm would compute it, with the same K blocks, so the results have the same bits.
//
// Tiling: K packed once by the caller (NR = 32 slivers); for each sliver, every 14-pixel tile
// of the n images, K blocks of at most KC as in gemm.cpp. Kernel rows that read only the zero
// padding (at the top and bottom of 'same' convolutions) are skipped: tiles are formed from
// output rows that skip the same kernel rows, and the weight gradient leaves those rows'
// pixels out. Tiles of whole 14- or 7-pixel output rows also skip the first and last kernel
// columns where they fall in the padding (IndirectEdgeSkip, gemm_ukernel.hpp), and the weight
// gradient's slices inside one kernel column leave out the pixels of the output columns
// whose tap there is padding. The sums are
// unchanged: the skipped terms are exact zeros, and only NaN or infinite kernel weights would
// differ, by not reaching the border pixels. Partial tiles, and tiles of pixels that are not
// consecutive in z, go through an edge buffer. Threading: none (one chunk of a batch, inside
// the caller's parallel loop).
#pragma once

#include <cstdint>

#include "kernels/conv_geometry.hpp"
#include "kernels/gemm.hpp"

namespace cnnx::kernels {

// Rows of a [rows, channels] NHWC block laid out as images of h x w pixels, with pixel
// (img, y, x) of the unpadded grid at row (img * h + y + top) * w + x + left.
struct RowGrid {
  std::int64_t h = 0, w = 0, top = 0, left = 0;
  bool operator==(const RowGrid& o) const { return h == o.h && w == o.w && top == o.top && left == o.left; }
};
// g's output pixels, dense; g's input pixels inside its zero-padded extent (padded_extent).
RowGrid dense_rows(const ConvGeometry& g);
RowGrid padded_rows(const ConvGeometry& g);

// Whether conv_forward_implicit handles g with the active kernels: not when they have no
// indirect micro-kernel, when the kernel is dilated along x (its taps are then not contiguous)
// or when a kernel row is shorter than 16 floats (see the definition).
bool conv_implicit_supported(const ConvGeometry& g);

// packed_kernel: the kernel [patch, cout] packed once for many calls with
// pack_b(Isa::avx512, patch, cout, kernel, cout, 1, ...) (gemm.hpp); packing it in every call
// (every chunk of a batch) cost 11% of a conv2 forward + backward.
// False (and nothing written) when !conv_implicit_supported(g): use im2col + gemm instead.
bool conv_forward_implicit(const float* x, std::int64_t n, const ConvGeometry& g, const float* packed_kernel,
                           std::int64_t cout, float* z, const GemmEpilogue& ep, float* scratch);
// The same from images already in their zero-padded place (padded_rows(g), as pad_nhwc
// writes them): no copy.
bool conv_forward_implicit_padded(const float* xpad, std::int64_t n, const ConvGeometry& g, const float* packed_kernel,
                                  std::int64_t cout, float* z, const GemmEpilogue& ep);

// The kernel [patch, cout] packed for conv_forward_implicit (NR-wide slivers, as pack_b), and
// the kernel of the input gradient packed directly: flipped and channels swapped,
// [kh, kw, cout, cin] as a [kh*kw*cout, cin] B (Conv2D's transposed geometry). Both split the
// slivers (and taps) over threads when `parallel`: done once per batch, serially they cost
// 5% of a conv3 forward + backward on 2 threads while the other thread waited.
// Both fill packed_b_size(Isa::avx512, rows, cols) floats (gemm.hpp) of the [rows, cols] B.
void pack_kernel_implicit(const float* kernel, std::int64_t patch, std::int64_t cout, float* dst, bool parallel);
void pack_flipped_kernel_implicit(const float* kernel, const ConvGeometry& g, std::int64_t cout, float* dst,
                                  bool parallel);

// The weight gradient of one chunk without an im2col panel: dk[patch, cout] = beta * dk +
// col^T dz (beta 0 or 1), col as im2col would build it from the n images of x, dz [n*oh*ow,
// cout]. Rows of dk in 14-row slices within one kernel row, each pixel's 14 values read from
// its window in a zero-padded copy (scratch: conv_weight_grad_scratch_size floats; always
// written). False (and nothing written) when !conv_implicit_supported(g).
// db (cout floats, overwritten) gets the column sums of dz, the bias gradient, for free in the
// spare row of a partial slice, when conv_weight_grad_sums_bias(g) (kw * c not a multiple of
// 14, as for the article's 96- and 192-float kernel rows); pass nullptr otherwise.
// dz_rows: where dz's row for output pixel (img, oy, ox) is, as a grid of rows (dense_rows(g)
// for dz as the layer output; padded_rows(tg) for the zero-padded copy of dz that the input
// gradient convolves, so one copy serves both), when conv_weight_grad_reads_padded_dz(cout)
// (dz read in place, cout a multiple of 32).
std::int64_t conv_weight_grad_scratch_size(const ConvGeometry& g, std::int64_t n);
bool conv_weight_grad_sums_bias(const ConvGeometry& g);
bool conv_weight_grad_reads_padded_dz(std::int64_t cout);
bool conv_weight_grad_implicit(const float* x, std::int64_t n, const ConvGeometry& g, const float* dz,
                               const RowGrid& dz_rows, std::int64_t cout, float beta, float* dk, float* db,
                               float* scratch);

}  // namespace cnnx::kernels
