// See pool.hpp for layout, tie rule and threading.
#include "kernels/pool.hpp"

#include <cstring>
#include <limits>

#include "core/parallel_for.hpp"
#include "kernels/vector_clones.hpp"

namespace cnnx::kernels {

namespace {

bool is_2x2_unpadded(const ConvGeometry& g) {
  return g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.pad_top == 0 && g.pad_left == 0 && 2 * g.oh <= g.h &&
         2 * g.ow <= g.w;
}

// 2x2 windows, stride 2, no padding: four loads per channel, select without branches. Ties keep
// the earlier tap (strict >), as in the general path. Selects only: vector clones give the same
// bits (vector_clones.hpp).
CNNX_VECTOR_CLONES void max_pool_2x2(const float* xi, const ConvGeometry& g, float* yi, std::int32_t* ai) {
  const std::int64_t c = g.c, row = g.w * c;
  for (std::int64_t oy = 0; oy < g.oh; ++oy) {
    for (std::int64_t ox = 0; ox < g.ow; ++ox) {
      const std::int32_t base = static_cast<std::int32_t>((2 * oy) * row + (2 * ox) * c);
      const float* p0 = xi + base;
      const float* p1 = p0 + c;
      const float* p2 = p0 + row;
      const float* p3 = p2 + c;
      float* yo = yi + (oy * g.ow + ox) * c;
      std::int32_t* ao = ai + (oy * g.ow + ox) * c;
      const std::int32_t o1 = static_cast<std::int32_t>(c), o2 = static_cast<std::int32_t>(row), o3 = o1 + o2;
      for (std::int64_t ci = 0; ci < c; ++ci) {
        // A tap wins when strictly greater, or when it is NaN and the best so far is not
        // (so NaN propagates, as in the general path); written as selects so it vectorises.
        float best = p0[ci];
        std::int32_t off = 0;
        bool take = p1[ci] > best || (p1[ci] != p1[ci] && best == best);
        off = take ? o1 : off;
        best = take ? p1[ci] : best;
        take = p2[ci] > best || (p2[ci] != p2[ci] && best == best);
        off = take ? o2 : off;
        best = take ? p2[ci] : best;
        take = p3[ci] > best || (p3[ci] != p3[ci] && best == best);
        off = take ? o3 : off;
        best = take ? p3[ci] : best;
        yo[ci] = best;
        ao[ci] = base + off + static_cast<std::int32_t>(ci);
      }
    }
  }
}

}  // namespace

void max_pool_forward(const float* x, std::int64_t n, const ConvGeometry& g, float* y, std::int32_t* argmax) {
  const std::int64_t in_size = g.h * g.w * g.c, out_size = g.oh * g.ow * g.c;
  const bool par = n > 1 && n * out_size >= (1 << 13);
  const bool fast = is_2x2_unpadded(g);
  parallel_for(n, par, [&](std::int64_t img) {
    if (fast) {
      max_pool_2x2(x + img * in_size, g, y + img * out_size, argmax + img * out_size);
      return;
    }
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
  });
}

namespace {

// 2x2 / stride 2 windows do not overlap, so every input pixel is written exactly once (its
// window's gradient or zero) in one pass: no memset followed by a scatter.
template <bool kRelu>
inline void max_pool_2x2_backward(const float* __restrict__ dyi, const std::int32_t* __restrict__ ai,
                                  const ConvGeometry& g, float* __restrict__ dxi, const float* __restrict__ yi) {
  const std::int64_t c = g.c, row = g.w * c;
  for (std::int64_t iy = 2 * g.oh; iy < g.h; ++iy) std::memset(dxi + iy * row, 0, sizeof(float) * row);
  const std::int32_t o1 = static_cast<std::int32_t>(c), o2 = static_cast<std::int32_t>(row), o3 = o1 + o2;
  for (std::int64_t oy = 0; oy < g.oh; ++oy) {
    if (2 * g.ow < g.w)
      for (std::int64_t iy = 2 * oy; iy < 2 * oy + 2; ++iy)
        std::memset(dxi + iy * row + 2 * g.ow * c, 0, sizeof(float) * (g.w - 2 * g.ow) * c);
    for (std::int64_t ox = 0; ox < g.ow; ++ox) {
      const std::int32_t base = static_cast<std::int32_t>((2 * oy) * row + (2 * ox) * c);
      float* __restrict__ p0 = dxi + base;
      float* __restrict__ p1 = dxi + base + o1;
      float* __restrict__ p2 = dxi + base + o2;
      float* __restrict__ p3 = dxi + base + o3;
      const std::int64_t o = (oy * g.ow + ox) * c;
      const float* __restrict__ d_in = dyi + o;
      const float* __restrict__ y_in = kRelu ? yi + o : dyi + o;
      const std::int32_t* __restrict__ a_in = ai + o;
      // Branch-free selects on same-width int/float lanes, so the loop vectorises.
      for (std::int64_t ci = 0; ci < c; ++ci) {
        const float dv = d_in[ci], yv = y_in[ci];  // unconditional loads: no branch to vectorise
        const float d = (!kRelu || yv > 0.0f) ? dv : 0.0f;
        const std::int32_t off = a_in[ci] - base - static_cast<std::int32_t>(ci);
        p0[ci] = off == 0 ? d : 0.0f;
        p1[ci] = off == o1 ? d : 0.0f;
        p2[ci] = off == o2 ? d : 0.0f;
        p3[ci] = off == o3 ? d : 0.0f;
      }
    }
  }
}

// The two instantiations, each compiled per vector width (selects only, as above).
CNNX_VECTOR_CLONES void max_pool_2x2_backward_relu(const float* dyi, const std::int32_t* ai, const ConvGeometry& g,
                                                   float* dxi, const float* yi) {
  max_pool_2x2_backward<true>(dyi, ai, g, dxi, yi);
}
CNNX_VECTOR_CLONES void max_pool_2x2_backward_plain(const float* dyi, const std::int32_t* ai, const ConvGeometry& g,
                                                    float* dxi) {
  max_pool_2x2_backward<false>(dyi, ai, g, dxi, nullptr);
}

}  // namespace

void max_pool_backward(const float* dy, const std::int32_t* argmax, std::int64_t n, const ConvGeometry& g, float* dx,
                       const float* relu_y) {
  const std::int64_t in_size = g.h * g.w * g.c, out_size = g.oh * g.ow * g.c;
  const bool par = n > 1 && n * in_size >= (1 << 13);
  parallel_for(n, par, [&](std::int64_t img) {
    float* dxi = dx + img * in_size;
    if (is_2x2_unpadded(g)) {
      if (relu_y)
        max_pool_2x2_backward_relu(dy + img * out_size, argmax + img * out_size, g, dxi, relu_y + img * out_size);
      else
        max_pool_2x2_backward_plain(dy + img * out_size, argmax + img * out_size, g, dxi);
      return;
    }
    std::memset(dxi, 0, sizeof(float) * in_size);
    const float* dyi = dy + img * out_size;
    const std::int32_t* ai = argmax + img * out_size;
    if (relu_y) {
      const float* yi = relu_y + img * out_size;
      for (std::int64_t o = 0; o < out_size; ++o)
        if (yi[o] > 0.0f) dxi[ai[o]] += dyi[o];
    } else {
      for (std::int64_t o = 0; o < out_size; ++o) dxi[ai[o]] += dyi[o];
    }
  });
}

namespace {

// Taps of output row/column o that fall inside [0, size): [lo, hi) in window coordinates.
inline void window_range(std::int64_t o, std::int64_t stride, std::int64_t pad, std::int64_t k, std::int64_t size,
                         std::int64_t* lo, std::int64_t* hi) {
  const std::int64_t start = o * stride - pad;
  *lo = start < 0 ? -start : 0;
  *hi = start + k > size ? size - start : k;
}

bool pool_parallel(std::int64_t n, std::int64_t work) { return n > 1 && work >= (1 << 13); }

}  // namespace

void avg_pool_forward(const float* x, std::int64_t n, const ConvGeometry& g, float* y) {
  const std::int64_t in_size = g.h * g.w * g.c, out_size = g.oh * g.ow * g.c;
  const bool par = pool_parallel(n, n * out_size);
  parallel_for(n, par, [&](std::int64_t img) {
    const float* xi = x + img * in_size;
    float* yi = y + img * out_size;
    for (std::int64_t oy = 0; oy < g.oh; ++oy) {
      std::int64_t y0, y1;
      window_range(oy, g.sh, g.pad_top, g.kh, g.h, &y0, &y1);
      for (std::int64_t ox = 0; ox < g.ow; ++ox) {
        std::int64_t x0, x1;
        window_range(ox, g.sw, g.pad_left, g.kw, g.w, &x0, &x1);
        float* yo = yi + (oy * g.ow + ox) * g.c;
        for (std::int64_t ci = 0; ci < g.c; ++ci) yo[ci] = 0.0f;
        for (std::int64_t ky = y0; ky < y1; ++ky) {
          const float* row = xi + ((oy * g.sh - g.pad_top + ky) * g.w + (ox * g.sw - g.pad_left)) * g.c;
          for (std::int64_t kx = x0; kx < x1; ++kx)
            for (std::int64_t ci = 0; ci < g.c; ++ci) yo[ci] += row[kx * g.c + ci];
        }
        const float inv = 1.0f / static_cast<float>((y1 - y0) * (x1 - x0));
        for (std::int64_t ci = 0; ci < g.c; ++ci) yo[ci] *= inv;
      }
    }
  });
}

void avg_pool_backward(const float* dy, std::int64_t n, const ConvGeometry& g, float* dx) {
  const std::int64_t in_size = g.h * g.w * g.c, out_size = g.oh * g.ow * g.c;
  const bool par = pool_parallel(n, n * in_size);
  parallel_for(n, par, [&](std::int64_t img) {
    float* dxi = dx + img * in_size;
    const float* dyi = dy + img * out_size;
    std::memset(dxi, 0, sizeof(float) * in_size);
    for (std::int64_t oy = 0; oy < g.oh; ++oy) {
      std::int64_t y0, y1;
      window_range(oy, g.sh, g.pad_top, g.kh, g.h, &y0, &y1);
      for (std::int64_t ox = 0; ox < g.ow; ++ox) {
        std::int64_t x0, x1;
        window_range(ox, g.sw, g.pad_left, g.kw, g.w, &x0, &x1);
        const float* d = dyi + (oy * g.ow + ox) * g.c;
        const float inv = 1.0f / static_cast<float>((y1 - y0) * (x1 - x0));
        for (std::int64_t ky = y0; ky < y1; ++ky) {
          float* row = dxi + ((oy * g.sh - g.pad_top + ky) * g.w + (ox * g.sw - g.pad_left)) * g.c;
          for (std::int64_t kx = x0; kx < x1; ++kx)
            for (std::int64_t ci = 0; ci < g.c; ++ci) row[kx * g.c + ci] += d[ci] * inv;
        }
      }
    }
  });
}

void global_avg_pool_forward(const float* x, std::int64_t n, std::int64_t hw, std::int64_t c, float* y) {
  const bool par = pool_parallel(n, n * hw * c);
  const float inv = 1.0f / static_cast<float>(hw);
  parallel_for(n, par, [&](std::int64_t img) {
    const float* xi = x + img * hw * c;
    float* yi = y + img * c;
    for (std::int64_t ci = 0; ci < c; ++ci) yi[ci] = 0.0f;
    for (std::int64_t p = 0; p < hw; ++p)
      for (std::int64_t ci = 0; ci < c; ++ci) yi[ci] += xi[p * c + ci];
    for (std::int64_t ci = 0; ci < c; ++ci) yi[ci] *= inv;
  });
}

void global_avg_pool_backward(const float* dy, std::int64_t n, std::int64_t hw, std::int64_t c, float* dx) {
  const bool par = pool_parallel(n, n * hw * c);
  const float inv = 1.0f / static_cast<float>(hw);
  parallel_for(n, par, [&](std::int64_t img) {
    const float* d = dy + img * c;
    float* dxi = dx + img * hw * c;
    for (std::int64_t p = 0; p < hw; ++p)
      for (std::int64_t ci = 0; ci < c; ++ci) dxi[p * c + ci] = d[ci] * inv;
  });
}

void global_max_pool_forward(const float* x, std::int64_t n, std::int64_t hw, std::int64_t c, float* y,
                             std::int32_t* argmax) {
  const bool par = pool_parallel(n, n * hw * c);
  parallel_for(n, par, [&](std::int64_t img) {
    const float* xi = x + img * hw * c;
    float* yi = y + img * c;
    std::int32_t* ai = argmax + img * c;
    for (std::int64_t ci = 0; ci < c; ++ci) {
      yi[ci] = xi[ci];
      ai[ci] = 0;
    }
    for (std::int64_t p = 1; p < hw; ++p) {
      const float* src = xi + p * c;
      const std::int32_t pi = static_cast<std::int32_t>(p);
      for (std::int64_t ci = 0; ci < c; ++ci) {
        // Strictly greater keeps the first of equal values; a NaN takes over and stays.
        const float v = src[ci], best = yi[ci];
        const bool take = v > best || (v != v && best == best);
        yi[ci] = take ? v : best;
        ai[ci] = take ? pi : ai[ci];
      }
    }
  });
}

void global_max_pool_backward(const float* dy, const std::int32_t* argmax, std::int64_t n, std::int64_t hw,
                              std::int64_t c, float* dx) {
  const bool par = pool_parallel(n, n * hw * c);
  parallel_for(n, par, [&](std::int64_t img) {
    float* dxi = dx + img * hw * c;
    std::memset(dxi, 0, sizeof(float) * hw * c);
    const float* d = dy + img * c;
    const std::int32_t* ai = argmax + img * c;
    for (std::int64_t ci = 0; ci < c; ++ci) dxi[ai[ci] * c + ci] = d[ci];
  });
}

}  // namespace cnnx::kernels
