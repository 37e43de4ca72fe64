// See pool.hpp for layout, tie rule and threading.
#include "kernels/pool.hpp"

#include <cstring>
#include <limits>

#include "cnnx/parallel.hpp"

namespace cnnx::kernels {

void max_pool_forward(const float* x, std::int64_t n, const ConvGeometry& g, float* y, std::int32_t* argmax) {
  const std::int64_t in_size = g.h * g.w * g.c, out_size = g.oh * g.ow * g.c;
  const bool par = n > 1 && n * out_size >= (1 << 13) && !in_parallel_region();
  const int nt = get_num_threads();
  (void)par; (void)nt;
#pragma omp parallel for schedule(static) if (par) num_threads(nt)
  for (std::int64_t img = 0; img < n; ++img) {
    const float* xi = x + img * in_size;
    float* yi = y + img * out_size;
    std::int32_t* ai = argmax + img * out_size;
    for (std::int64_t oy = 0; oy < g.oh; ++oy) {
      for (std::int64_t ox = 0; ox < g.ow; ++ox) {
        float* yo = yi + (oy * g.ow + ox) * g.c;
        std::int32_t* ao = ai + (oy * g.ow + ox) * g.c;
        for (std::int64_t ci = 0; ci < g.c; ++ci) {
          yo[ci] = -std::numeric_limits<float>::infinity();
          ao[ci] = -1;
        }
        for (std::int64_t ky = 0; ky < g.kh; ++ky) {
          const std::int64_t iy = oy * g.sh - g.pad_top + ky;
          if (iy < 0 || iy >= g.h) continue;
          for (std::int64_t kx = 0; kx < g.kw; ++kx) {
            const std::int64_t ix = ox * g.sw - g.pad_left + kx;
            if (ix < 0 || ix >= g.w) continue;
            const std::int64_t base = (iy * g.w + ix) * g.c;
            const float* src = xi + base;
            for (std::int64_t ci = 0; ci < g.c; ++ci) {
              // The first tap always wins; later taps only when strictly greater, so ties
              // keep the first. A NaN takes over (and stays) so it propagates, as in TF.
              const float v = src[ci];
              if (ao[ci] < 0 || v > yo[ci] || (v != v && yo[ci] == yo[ci])) {
                yo[ci] = v;
                ao[ci] = static_cast<std::int32_t>(base + ci);
              }
            }
          }
        }
      }
    }
  }
}

void max_pool_backward(const float* dy, const std::int32_t* argmax, std::int64_t n, const ConvGeometry& g, float* dx) {
  const std::int64_t in_size = g.h * g.w * g.c, out_size = g.oh * g.ow * g.c;
  const bool par = n > 1 && n * in_size >= (1 << 13) && !in_parallel_region();
  const int nt = get_num_threads();
  (void)par; (void)nt;
#pragma omp parallel for schedule(static) if (par) num_threads(nt)
  for (std::int64_t img = 0; img < n; ++img) {
    float* dxi = dx + img * in_size;
    std::memset(dxi, 0, sizeof(float) * in_size);
    const float* dyi = dy + img * out_size;
    const std::int32_t* ai = argmax + img * out_size;
    for (std::int64_t o = 0; o < out_size; ++o) dxi[ai[o]] += dyi[o];
  }
}

}  // namespace cnnx::kernels
