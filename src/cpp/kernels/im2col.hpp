// im2col / col2im for NHWC images.
// Layout: x is [n, h, w, c]; the column matrix is [n*oh*ow, kh*kw*c] with columns ordered
// (ky, kx, ci) -- the same order as a Keras kernel (kh, kw, cin, cout) flattened to
// [kh*kw*cin, cout], so convolution is one row-major GEMM col x kernel with no transpose, and
// each (ky, kx) tap copies c contiguous floats.
// Threading: im2col pads per image, then copies per output row (n*oh) in parallel; col2im is
// parallel over images, because taps of neighbouring outputs overlap within an image
// (scatter-add would race). Both are serial inside a caller's parallel region.
#pragma once

#include <cstdint>

#include "kernels/conv_geometry.hpp"

namespace cnnx::kernels {

// The extent of the zero-padded images that the windows read, padding included; needed is
// false when x itself has that extent (no padding anywhere).
struct PaddedExtent {
  std::int64_t h, w;
  bool needed;
};
PaddedExtent padded_extent(const ConvGeometry& g);
// n images into their zero-padded place: dst holds n * h * w * c floats of padded_extent(g).
// Serial (for one chunk inside a caller's parallel loop).
void pad_nhwc(const float* x, std::int64_t n, const ConvGeometry& g, float* dst);
// The same for the gradient of a ReLU's output: dst = pad(y > 0 ? dy : 0), dy and y shaped
// like g's input (one pass for the ReLU derivative and the padding; y <= 0 or NaN gives 0).
void pad_nhwc_where_positive(const float* dy, const float* y, std::int64_t n, const ConvGeometry& g, float* dst);

// Floats of scratch that im2col_nhwc / col2im_nhwc need for n images: a zero-padded copy of
// them (0 when the geometry has no padding, e.g. 'valid' convolutions, which read x itself).
std::int64_t im2col_scratch_size(const ConvGeometry& g, std::int64_t n);

// col row (pixel) i starts at col + i * ld (ld >= patch); columns past patch are not touched,
// so a caller can keep its own extra column there.
void im2col_nhwc(const float* x, std::int64_t n, const ConvGeometry& g, float* col, std::int64_t ld, float* scratch);
// x = sum of the column entries that read it (x is overwritten, not accumulated into).
void col2im_nhwc(const float* col, std::int64_t n, const ConvGeometry& g, float* x, float* scratch);

}  // namespace cnnx::kernels
