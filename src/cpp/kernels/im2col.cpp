// See im2col.hpp for layout and threading. Padding taps are written as zeros so the GEMM needs
// no bounds logic; the cost is a few zero rows at the border.
#include "kernels/im2col.hpp"

#include <cstring>

#include "cnnx/parallel.hpp"

namespace cnnx::kernels {

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
    float* out = col + r * g.ow * patch;
    for (std::int64_t ox = 0; ox < g.ow; ++ox) {
      for (std::int64_t ky = 0; ky < g.kh; ++ky) {
        const std::int64_t iy = oy * g.sh - g.pad_top + ky * g.dh;
        for (std::int64_t kx = 0; kx < g.kw; ++kx) {
          const std::int64_t ix = ox * g.sw - g.pad_left + kx * g.dw;
          if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) {
            std::memset(out, 0, sizeof(float) * g.c);
          } else {
            const float* src = xi + (iy * g.w + ix) * g.c;
            if (g.c == 1) *out = *src;  // the first layer of a grayscale network
            else std::memcpy(out, src, sizeof(float) * g.c);
          }
          out += g.c;
        }
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
