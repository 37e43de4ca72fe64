// See im2col.hpp for layout and threading.
//
// Both directions go through a zero-padded copy of the images (when the geometry has padding),
// so that every tap of every output lands inside: no bounds logic at all in the copy loops,
// which on the article's 14x14 and 7x7 maps otherwise cost more than the copies. The padded
// copy is 1/(kh*kw) the size of the column matrix. With no dilation along x, the kw taps of a
// kernel row are kw neighbouring pixels, i.e. kw*c contiguous floats both in the padded image
// and in the column matrix: one run per (output pixel, ky).
#include "kernels/im2col.hpp"

#include <algorithm>

#include "core/parallel_for.hpp"
#include "kernels/vector_clones.hpp"

namespace cnnx::kernels {

namespace {

// The copy and add loops below are bound by load/store width: see vector_clones.hpp.

// Runs are 3 to a few hundred floats, where a library call costs more than the copy (GCC
// turns a plain element loop into a memcpy/memset call): fixed-size 64-byte blocks compile to
// inline vector moves, then the tail goes element by element.
inline void copy_run(float* __restrict__ out, const float* __restrict__ src, std::int64_t len) {
  std::int64_t i = 0;
  for (; i + 16 <= len; i += 16) __builtin_memcpy(out + i, src + i, 16 * sizeof(float));
  for (; i < len; ++i) out[i] = src[i];
}
inline void add_run(float* __restrict__ out, const float* __restrict__ src, std::int64_t len) {
  for (std::int64_t i = 0; i < len; ++i) out[i] += src[i];
}
inline void zero_run(float* out, std::int64_t len) {
  std::int64_t i = 0;
  for (; i + 16 <= len; i += 16) __builtin_memset(out + i, 0, 16 * sizeof(float));
  for (; i < len; ++i) out[i] = 0.0f;
}

}  // namespace

PaddedExtent padded_extent(const ConvGeometry& g) {
  PaddedExtent p;
  p.h = std::max(checked_add(g.pad_top, g.h),
                 checked_add(checked_add(checked_mul(g.oh - 1, g.sh), checked_mul(g.kh - 1, g.dh)), 1));
  p.w = std::max(checked_add(g.pad_left, g.w),
                 checked_add(checked_add(checked_mul(g.ow - 1, g.sw), checked_mul(g.kw - 1, g.dw)), 1));
  p.needed = g.pad_top > 0 || g.pad_left > 0 || p.h > g.h || p.w > g.w;
  if (!p.needed) p.h = g.h, p.w = g.w;
  return p;
}

namespace {

// One image into its padded place: zero borders, and each row of the image written whole by
// put_row(out, offset of the row in the image, floats).
template <class PutRow>
inline void pad_image_rows(const ConvGeometry& g, const PaddedExtent& p, float* out, PutRow put_row) {
  const std::int64_t c = g.c, right = (p.w - g.pad_left - g.w) * c;
  for (std::int64_t yy = 0; yy < p.h; ++yy, out += p.w * c) {
    const std::int64_t iy = yy - g.pad_top;
    if (iy < 0 || iy >= g.h) {
      zero_run(out, p.w * c);
      continue;
    }
    zero_run(out, g.pad_left * c);
    put_row(out + g.pad_left * c, iy * g.w * c, g.w * c);
    zero_run(out + (g.pad_left + g.w) * c, right);
  }
}

CNNX_VECTOR_CLONES void pad_image(const float* xi, const ConvGeometry& g, const PaddedExtent& p, float* out) {
  pad_image_rows(g, p, out, [xi](float* o, std::int64_t at, std::int64_t len) { copy_run(o, xi + at, len); });
}

// The same with the ReLU derivative applied on the way: dy where y > 0, else 0.
CNNX_VECTOR_CLONES void pad_image_where_positive(const float* dyi, const float* yi, const ConvGeometry& g,
                                                 const PaddedExtent& p, float* out) {
  pad_image_rows(g, p, out, [dyi, yi](float* o, std::int64_t at, std::int64_t len) {
    for (std::int64_t i = 0; i < len; ++i) {
      const float d = dyi[at + i];  // loaded unconditionally, so the select vectorises
      o[i] = yi[at + i] > 0.0f ? d : 0.0f;
    }
  });
}

// Output row r (image r / oh, row r % oh) of the column matrix from the padded images src.
CNNX_VECTOR_CLONES void im2col_row(const float* src, const ConvGeometry& g, const PaddedExtent& p, std::int64_t r,
                                   float* out_row, std::int64_t ld) {
  const std::int64_t c = g.c, run = g.kw * c, img = r / g.oh, oy = r % g.oh;
  for (std::int64_t ky = 0; ky < g.kh; ++ky) {
    const float* row = src + ((img * p.h) + oy * g.sh + ky * g.dh) * p.w * c;
    float* out = out_row + ky * run;
    if (c == 1 && g.kw == 3 && g.dw == 1) {  // one-channel 3-wide kernels: fixed-size copies
      for (std::int64_t ox = 0; ox < g.ow; ++ox, out += ld) {
        const float* s = row + ox * g.sw;
        out[0] = s[0], out[1] = s[1], out[2] = s[2];
      }
    } else if (g.dw == 1) {
      for (std::int64_t ox = 0; ox < g.ow; ++ox, out += ld) copy_run(out, row + ox * g.sw * c, run);
    } else {
      for (std::int64_t ox = 0; ox < g.ow; ++ox, out += ld)
        for (std::int64_t kx = 0; kx < g.kw; ++kx) copy_run(out + kx * c, row + (ox * g.sw + kx * g.dw) * c, c);
    }
  }
}

// One image's gradient from its rows of the column matrix (dst: its padded image, or x).
CNNX_VECTOR_CLONES void col2im_image(const float* in, const ConvGeometry& g, const PaddedExtent& p, float* dst,
                                     float* xi) {
  const std::int64_t c = g.c, run = g.kw * c, patch = g.patch();
  zero_run(dst, p.h * p.w * c);
  for (std::int64_t oy = 0; oy < g.oh; ++oy) {
    for (std::int64_t ky = 0; ky < g.kh; ++ky) {
      float* row = dst + (oy * g.sh + ky * g.dh) * p.w * c;
      const float* src = in + oy * g.ow * patch + ky * run;
      if (g.dw == 1) {
        for (std::int64_t ox = 0; ox < g.ow; ++ox) add_run(row + ox * g.sw * c, src + ox * patch, run);
      } else {
        for (std::int64_t ox = 0; ox < g.ow; ++ox)
          for (std::int64_t kx = 0; kx < g.kw; ++kx)
            add_run(row + (ox * g.sw + kx * g.dw) * c, src + ox * patch + kx * c, c);
      }
    }
  }
  if (!p.needed) return;
  for (std::int64_t iy = 0; iy < g.h; ++iy)  // the padded image's interior is the gradient
    copy_run(xi + iy * g.w * c, dst + ((iy + g.pad_top) * p.w + g.pad_left) * c, g.w * c);
}

}  // namespace

void pad_nhwc(const float* x, std::int64_t n, const ConvGeometry& g, float* dst) {
  const PaddedExtent p = padded_extent(g);
  for (std::int64_t img = 0; img < n; ++img) pad_image(x + img * g.h * g.w * g.c, g, p, dst + img * p.h * p.w * g.c);
}

void pad_nhwc_where_positive(const float* dy, const float* y, std::int64_t n, const ConvGeometry& g, float* dst) {
  const PaddedExtent p = padded_extent(g);
  const std::int64_t in = g.h * g.w * g.c;
  for (std::int64_t img = 0; img < n; ++img)
    pad_image_where_positive(dy + img * in, y + img * in, g, p, dst + img * p.h * p.w * g.c);
}

std::int64_t im2col_scratch_size(const ConvGeometry& g, std::int64_t n) {
  const PaddedExtent p = padded_extent(g);
  return p.needed ? shape_size({n, p.h, p.w, g.c}) : 0;
}

void im2col_nhwc(const float* x, std::int64_t n, const ConvGeometry& g, float* col, std::int64_t ld, float* scratch) {
  const PaddedExtent p = padded_extent(g);
  const bool par = n * g.oh * g.ow * g.patch() >= (1 << 14);
  const float* src = x;
  if (p.needed) {
    parallel_for(n, par && n > 1, [&](std::int64_t img) {
      pad_image(x + img * g.h * g.w * g.c, g, p, scratch + img * p.h * p.w * g.c);
    });
    src = scratch;
  }
  parallel_for(n * g.oh, par, [&](std::int64_t r) { im2col_row(src, g, p, r, col + r * g.ow * ld, ld); });
}

void col2im_nhwc(const float* col, std::int64_t n, const ConvGeometry& g, float* x, float* scratch) {
  const PaddedExtent p = padded_extent(g);
  const std::int64_t c = g.c, patch = g.patch(), img_size = p.h * p.w * c;
  const bool par = n > 1 && n * g.oh * g.ow * patch >= (1 << 14);
  parallel_for(n, par, [&](std::int64_t img) {
    float* xi = x + img * g.h * g.w * c;
    col2im_image(col + img * g.oh * g.ow * patch, g, p, p.needed ? scratch + img * img_size : xi, xi);
  });
}

}  // namespace cnnx::kernels
