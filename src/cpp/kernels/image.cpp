// See image.hpp for layout, sampling, fill modes and threading.
#include "kernels/image.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "cnnx/error.hpp"
#include "core/parallel_for.hpp"

namespace cnnx::kernels {

FillMode parse_fill_mode(const std::string& value, const std::string& where) {
  if (value == "reflect") return FillMode::reflect;
  if (value == "wrap") return FillMode::wrap;
  if (value == "constant") return FillMode::constant;
  if (value == "nearest") return FillMode::nearest;
  throw ValueError(where +
                   ": expected fill_mode to be one of 'reflect', 'wrap', 'constant', 'nearest', received fill_mode='" +
                   value + "'");
}

Interpolation parse_interpolation(const std::string& value, const std::string& where) {
  if (value == "bilinear") return Interpolation::bilinear;
  if (value == "nearest") return Interpolation::nearest;
  throw ValueError(where + ": expected interpolation to be 'bilinear' or 'nearest', received interpolation='" + value +
                   "'");
}

namespace {

bool image_parallel(std::int64_t n, std::int64_t work) { return n > 1 && work >= (1 << 13); }

// Integer tap i on an axis of `len` pixels -> the pixel it reads, or -1 for the fill value.
inline std::int64_t map_tap(std::int64_t i, std::int64_t len, FillMode mode) {
  if (i >= 0 && i < len) return i;
  switch (mode) {
    case FillMode::constant: return -1;
    case FillMode::nearest: return i < 0 ? 0 : len - 1;
    case FillMode::wrap: {
      const std::int64_t m = i % len;
      return m < 0 ? m + len : m;
    }
    case FillMode::reflect: {
      const std::int64_t period = 2 * len;
      std::int64_t m = i % period;
      if (m < 0) m += period;
      return m < len ? m : period - 1 - m;
    }
  }
  return -1;
}

// The (up to) 4 taps of one output pixel: pixel offsets (y * w + x, or -1 for the fill value)
// and their weights.
struct Taps {
  std::int64_t at[4];
  float weight[4];
  int count;
};

inline Taps pixel_taps(double sx, double sy, std::int64_t h, std::int64_t w, const AffineSpec& spec) {
  Taps t;
  // Far-away or undefined coordinates read the fill / border; keeps floor() in int64 range.
  const double limit = 1e9;
  if (!(sx > -limit && sx < limit)) sx = sx > 0 ? limit : -limit;  // NaN -> -limit
  if (!(sy > -limit && sy < limit)) sy = sy > 0 ? limit : -limit;
  if (spec.interpolation == Interpolation::nearest) {
    const std::int64_t ix = map_tap(static_cast<std::int64_t>(std::floor(sx + 0.5)), w, spec.fill_mode);
    const std::int64_t iy = map_tap(static_cast<std::int64_t>(std::floor(sy + 0.5)), h, spec.fill_mode);
    t.at[0] = ix < 0 || iy < 0 ? -1 : iy * w + ix;
    t.weight[0] = 1.0f;
    t.count = 1;
    return t;
  }
  const double fx0 = std::floor(sx), fy0 = std::floor(sy);
  const float fx = static_cast<float>(sx - fx0), fy = static_cast<float>(sy - fy0);
  const std::int64_t x0 = static_cast<std::int64_t>(fx0), y0 = static_cast<std::int64_t>(fy0);
  const std::int64_t xs[2] = {map_tap(x0, w, spec.fill_mode), map_tap(x0 + 1, w, spec.fill_mode)};
  const std::int64_t ys[2] = {map_tap(y0, h, spec.fill_mode), map_tap(y0 + 1, h, spec.fill_mode)};
  const float wx[2] = {1.0f - fx, fx}, wy[2] = {1.0f - fy, fy};
  t.count = 4;
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 2; ++b) {
      t.at[2 * a + b] = xs[b] < 0 || ys[a] < 0 ? -1 : ys[a] * w + xs[b];
      t.weight[2 * a + b] = wy[a] * wx[b];
    }
  return t;
}

inline void source_point(const float* m, std::int64_t x, std::int64_t y, double* sx, double* sy) {
  const double k = m[6] * double(x) + m[7] * double(y) + 1.0;
  *sx = (m[0] * double(x) + m[1] * double(y) + m[2]) / k;
  *sy = (m[3] * double(x) + m[4] * double(y) + m[5]) / k;
}

}  // namespace

void resize_axis(std::int64_t offset, std::int64_t crop, std::int64_t out, Interpolation interp, ResizeAxis axis) {
  const double scale = double(crop) / double(out);
  for (std::int64_t o = 0; o < out; ++o) {
    if (interp == Interpolation::nearest) {
      const std::int64_t i = std::min(static_cast<std::int64_t>(std::floor((double(o) + 0.5) * scale)), crop - 1);
      axis.lo[o] = axis.hi[o] = offset + std::max<std::int64_t>(i, 0);
      axis.frac[o] = 0.0f;
      continue;
    }
    const double s = (double(o) + 0.5) * scale - 0.5;
    const double f = std::floor(s);
    const std::int64_t i = static_cast<std::int64_t>(f);
    axis.lo[o] = offset + std::clamp<std::int64_t>(i, 0, crop - 1);
    axis.hi[o] = offset + std::clamp<std::int64_t>(i + 1, 0, crop - 1);
    axis.frac[o] = static_cast<float>(s - f);
  }
}

void resize_forward(const float* x, std::int64_t n, std::int64_t h, std::int64_t w, std::int64_t c,
                    const ResizeAxis& rows, std::int64_t oh, const ResizeAxis& cols, std::int64_t ow, float* y) {
  const std::int64_t in_size = h * w * c, out_size = oh * ow * c;
  const bool par = image_parallel(n, n * out_size);
  parallel_for(n, par, [&](std::int64_t img) {
    const float* xi = x + img * in_size;
    float* yi = y + img * out_size;
    for (std::int64_t oy = 0; oy < oh; ++oy) {
      const float* r0 = xi + rows.lo[oy] * w * c;
      const float* r1 = xi + rows.hi[oy] * w * c;
      const float fy = rows.frac[oy];
      for (std::int64_t ox = 0; ox < ow; ++ox) {
        const std::int64_t c0 = cols.lo[ox] * c, c1 = cols.hi[ox] * c;
        const float fx = cols.frac[ox];
        float* yo = yi + (oy * ow + ox) * c;
        for (std::int64_t ci = 0; ci < c; ++ci) {
          // tf.image.resize's order: lerp along x on both rows, then along y.
          const float top = r0[c0 + ci] + (r0[c1 + ci] - r0[c0 + ci]) * fx;
          const float bottom = r1[c0 + ci] + (r1[c1 + ci] - r1[c0 + ci]) * fx;
          yo[ci] = top + (bottom - top) * fy;
        }
      }
    }
  });
}

void resize_backward(const float* dy, std::int64_t n, std::int64_t h, std::int64_t w, std::int64_t c,
                     const ResizeAxis& rows, std::int64_t oh, const ResizeAxis& cols, std::int64_t ow, float* dx) {
  const std::int64_t in_size = h * w * c, out_size = oh * ow * c;
  const bool par = image_parallel(n, n * (in_size + out_size));
  parallel_for(n, par, [&](std::int64_t img) {
    float* dxi = dx + img * in_size;
    const float* dyi = dy + img * out_size;
    std::memset(dxi, 0, sizeof(float) * static_cast<std::size_t>(in_size));
    for (std::int64_t oy = 0; oy < oh; ++oy) {
      float* r0 = dxi + rows.lo[oy] * w * c;
      float* r1 = dxi + rows.hi[oy] * w * c;
      const float fy = rows.frac[oy];
      for (std::int64_t ox = 0; ox < ow; ++ox) {
        const std::int64_t c0 = cols.lo[ox] * c, c1 = cols.hi[ox] * c;
        const float fx = cols.frac[ox];
        const float w00 = (1.0f - fy) * (1.0f - fx), w01 = (1.0f - fy) * fx, w10 = fy * (1.0f - fx), w11 = fy * fx;
        const float* d = dyi + (oy * ow + ox) * c;
        for (std::int64_t ci = 0; ci < c; ++ci) {
          r0[c0 + ci] += d[ci] * w00;
          r0[c1 + ci] += d[ci] * w01;
          r1[c0 + ci] += d[ci] * w10;
          r1[c1 + ci] += d[ci] * w11;
        }
      }
    }
  });
}

void affine_transform(const float* x, std::int64_t n, std::int64_t h, std::int64_t w, std::int64_t c,
                      const float* transforms, const AffineSpec& spec, float* y) {
  const std::int64_t size = h * w * c;
  const bool par = image_parallel(n, n * size);
  parallel_for(n, par, [&](std::int64_t img) {
    const float* xi = x + img * size;
    const float* m = transforms + 8 * img;
    float* yi = y + img * size;
    for (std::int64_t oy = 0; oy < h; ++oy) {
      for (std::int64_t ox = 0; ox < w; ++ox) {
        double sx, sy;
        source_point(m, ox, oy, &sx, &sy);
        const Taps t = pixel_taps(sx, sy, h, w, spec);
        float* yo = yi + (oy * w + ox) * c;
        float fill = 0.0f;
        for (std::int64_t ci = 0; ci < c; ++ci) yo[ci] = 0.0f;
        for (int k = 0; k < t.count; ++k) {
          if (t.weight[k] == 0.0f) continue;  // exact results on the grid, no 0 * inf
          if (t.at[k] < 0) {
            fill += t.weight[k];
            continue;
          }
          const float* src = xi + t.at[k] * c;
          const float wk = t.weight[k];
          for (std::int64_t ci = 0; ci < c; ++ci) yo[ci] += wk * src[ci];
        }
        if (fill != 0.0f)
          for (std::int64_t ci = 0; ci < c; ++ci) yo[ci] += fill * spec.fill_value;
      }
    }
  });
}

void affine_transform_backward(const float* dy, std::int64_t n, std::int64_t h, std::int64_t w, std::int64_t c,
                               const float* transforms, const AffineSpec& spec, float* dx) {
  const std::int64_t size = h * w * c;
  const bool par = image_parallel(n, n * size);
  parallel_for(n, par, [&](std::int64_t img) {
    const float* dyi = dy + img * size;
    const float* m = transforms + 8 * img;
    float* dxi = dx + img * size;
    std::memset(dxi, 0, sizeof(float) * static_cast<std::size_t>(size));
    for (std::int64_t oy = 0; oy < h; ++oy) {
      for (std::int64_t ox = 0; ox < w; ++ox) {
        double sx, sy;
        source_point(m, ox, oy, &sx, &sy);
        const Taps t = pixel_taps(sx, sy, h, w, spec);
        const float* d = dyi + (oy * w + ox) * c;
        for (int k = 0; k < t.count; ++k) {
          if (t.weight[k] == 0.0f || t.at[k] < 0) continue;  // the fill value is not an input
          float* dst = dxi + t.at[k] * c;
          const float wk = t.weight[k];
          for (std::int64_t ci = 0; ci < c; ++ci) dst[ci] += wk * d[ci];
        }
      }
    }
  });
}

void flip(const float* x, std::int64_t n, std::int64_t h, std::int64_t w, std::int64_t c, const float* flips,
          float* y) {
  const std::int64_t size = h * w * c, row = w * c;
  const bool par = image_parallel(n, n * size);
  parallel_for(n, par, [&](std::int64_t img) {
    const bool lr = flips[2 * img] != 0.0f, ud = flips[2 * img + 1] != 0.0f;
    const float* xi = x + img * size;
    float* yi = y + img * size;
    for (std::int64_t oy = 0; oy < h; ++oy) {
      const float* src = xi + (ud ? h - 1 - oy : oy) * row;
      float* dst = yi + oy * row;
      if (!lr) {
        std::memcpy(dst, src, sizeof(float) * static_cast<std::size_t>(row));
        continue;
      }
      for (std::int64_t ox = 0; ox < w; ++ox)
        std::memcpy(dst + ox * c, src + (w - 1 - ox) * c, sizeof(float) * static_cast<std::size_t>(c));
    }
  });
}

void contrast_forward(const float* x, std::int64_t n, std::int64_t hw, std::int64_t c, const float* factor, float lo,
                      float hi, float* means, float* y) {
  const bool par = image_parallel(n, n * hw * c);
  parallel_for(n, par, [&](std::int64_t img) {
    const float* xi = x + img * hw * c;
    float* yi = y + img * hw * c;
    float* m = means + img * c;
    for (std::int64_t ci = 0; ci < c; ++ci) m[ci] = 0.0f;
    for (std::int64_t p = 0; p < hw; ++p)
      for (std::int64_t ci = 0; ci < c; ++ci) m[ci] += xi[p * c + ci];
    const float inv = 1.0f / static_cast<float>(hw), f = factor[img];
    for (std::int64_t ci = 0; ci < c; ++ci) m[ci] *= inv;
    for (std::int64_t p = 0; p < hw; ++p)
      for (std::int64_t ci = 0; ci < c; ++ci) {
        const float z = (xi[p * c + ci] - m[ci]) * f + m[ci];
        yi[p * c + ci] = std::min(std::max(z, lo), hi);
      }
  });
}

void contrast_backward(const float* x, const float* dy, std::int64_t n, std::int64_t hw, std::int64_t c,
                       const float* factor, const float* means, float lo, float hi, float* sums, float* dx) {
  const bool par = image_parallel(n, n * hw * c);
  parallel_for(n, par, [&](std::int64_t img) {
    const float* xi = x + img * hw * c;
    const float* dyi = dy + img * hw * c;
    float* dxi = dx + img * hw * c;
    const float* m = means + img * c;
    float* s = sums + img * c;
    const float f = factor[img];
    for (std::int64_t ci = 0; ci < c; ++ci) s[ci] = 0.0f;
    for (std::int64_t p = 0; p < hw; ++p)
      for (std::int64_t ci = 0; ci < c; ++ci) {
        const float z = (xi[p * c + ci] - m[ci]) * f + m[ci];
        const float g = z >= lo && z <= hi ? dyi[p * c + ci] : 0.0f;
        dxi[p * c + ci] = g;  // the passed gradient, finished below
        s[ci] += g;
      }
    const float k = (1.0f - f) / static_cast<float>(hw);
    for (std::int64_t ci = 0; ci < c; ++ci) s[ci] *= k;
    for (std::int64_t p = 0; p < hw; ++p)
      for (std::int64_t ci = 0; ci < c; ++ci) dxi[p * c + ci] = f * dxi[p * c + ci] + s[ci];
  });
}

}  // namespace cnnx::kernels
