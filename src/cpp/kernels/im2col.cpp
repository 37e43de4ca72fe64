// See im2col.hpp for layout and threading. Padding taps are written as zeros so the GEMM needs
// no bounds logic; the cost is a few zero rows at the border.
#include "kernels/im2col.hpp"

#include <algorithm>
#include <cstring>

#include "cnnx/parallel.hpp"

namespace cnnx::kernels {

namespace {

// Copies `c` floats; a one-channel input (the first layer of a grayscale network) is a single
// move, not a library call.
inline void copy_channels(float* __restrict__ out, const float* __restrict__ src, std::int64_t c) {
  if (c == 1) *out = *src;
  else std::memcpy(out, src, sizeof(float) * c);
}

inline void zero_channels(float* out, std::int64_t c) {
  if (c == 1) *out = 0.0f;
  else std::memset(out, 0, sizeof(float) * c);
}

}  // namespace

// Taps outer, output columns inner: for each (ky, kx) the output columns whose tap lands inside
// the image form one range [ox_lo, ox_hi), so the copy loop has no per-element bounds checks.
void im2col_nhwc(const float* x, std::int64_t n, const ConvGeometry& g, float* col) {
  const std::int64_t patch = g.patch();
  const std::int64_t rows = n * g.oh;
  const bool par = rows * g.ow * patch >= (1 << 14) && !in_parallel_region();
  const int nt = get_num_threads();
  (void)par; (void)nt;
#pragma omp parallel for schedule(static) if (par) num_threads(nt)
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t img = r / g.oh, oy = r % g.oh;
    const float* xi = x + img * g.h * g.w * g.c;
    float* out_row = col + r * g.ow * patch;
    for (std::int64_t ky = 0; ky < g.kh; ++ky) {
      const std::int64_t iy = oy * g.sh - g.pad_top + ky * g.dh;
      const bool row_inside = iy >= 0 && iy < g.h;
      for (std::int64_t kx = 0; kx < g.kw; ++kx) {
        const std::int64_t j = (ky * g.kw + kx) * g.c;
        const std::int64_t shift = kx * g.dw - g.pad_left;  // ix = ox * sw + shift
        std::int64_t lo = 0, hi = 0;
        if (row_inside) {
          lo = shift >= 0 ? 0 : (-shift + g.sw - 1) / g.sw;
          hi = g.w - 1 - shift < 0 ? 0 : (g.w - 1 - shift) / g.sw + 1;
          lo = std::min(lo, g.ow);
          hi = std::max(lo, std::min(hi, g.ow));
        }
        for (std::int64_t ox = 0; ox < lo; ++ox) zero_channels(out_row + ox * patch + j, g.c);
        for (std::int64_t ox = lo; ox < hi; ++ox)
          copy_channels(out_row + ox * patch + j, xi + (iy * g.w + ox * g.sw + shift) * g.c, g.c);
        for (std::int64_t ox = hi; ox < g.ow; ++ox) zero_channels(out_row + ox * patch + j, g.c);
      }
    }
  }
}

void col2im_nhwc(const float* col, std::int64_t n, const ConvGeometry& g, float* x) {
  const std::int64_t patch = g.patch();
  const std::int64_t img_size = g.h * g.w * g.c;
  const bool par = n > 1 && n * g.oh * g.ow * patch >= (1 << 14) && !in_parallel_region();
  const int nt = get_num_threads();
  (void)par; (void)nt;
#pragma omp parallel for schedule(static) if (par) num_threads(nt)
  for (std::int64_t img = 0; img < n; ++img) {
    float* xi = x + img * img_size;
    std::memset(xi, 0, sizeof(float) * img_size);
    const float* in = col + img * g.oh * g.ow * patch;
    for (std::int64_t oy = 0; oy < g.oh; ++oy) {
      for (std::int64_t ox = 0; ox < g.ow; ++ox) {
        for (std::int64_t ky = 0; ky < g.kh; ++ky) {
          const std::int64_t iy = oy * g.sh - g.pad_top + ky * g.dh;
          for (std::int64_t kx = 0; kx < g.kw; ++kx) {
            const std::int64_t ix = ox * g.sw - g.pad_left + kx * g.dw;
            if (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w) {
              float* __restrict__ dst = xi + (iy * g.w + ix) * g.c;
              const float* __restrict__ src = in;
              for (std::int64_t ci = 0; ci < g.c; ++ci) dst[ci] += src[ci];
            }
            in += g.c;
          }
        }
      }
    }
  }
}

}  // namespace cnnx::kernels
