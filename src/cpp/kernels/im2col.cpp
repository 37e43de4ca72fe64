// See im2col.hpp for layout and threading. Padding taps are written as zeros so the GEMM needs
// no bounds logic; the cost is a few zero rows at the border.
//
// Both directions walk one kernel row (ky) of one output row at a time. For each tap kx the
// output columns whose input pixel lies inside the image form one range, found once, so the
// copy loops have no per-element bounds checks. With stride 1 and no dilation the kw taps of a
// kernel row read kw neighbouring pixels, kw*c contiguous floats in x as in the column matrix:
// where all taps are inside, that is one run instead of kw short ones (96 floats instead of
// three 32-float library calls for the article's conv2).
#include "kernels/im2col.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include "cnnx/parallel.hpp"

namespace cnnx::kernels {

namespace {

// Runs are 1 to a few hundred floats, where a library call costs more than the copy (GCC turns
// a plain element loop into a memcpy/memset call, measured at 7% of a conv2 step). Fixed-size
// 64-byte block copies compile to inline vector moves instead, then the tail goes element-wise.
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

// The output columns ox whose tap kx reads inside the image: [lo, hi), with ix = ox*sw + shift.
struct TapRange {
  std::int64_t lo, hi, shift;
};

inline TapRange tap_range(const ConvGeometry& g, std::int64_t kx) {
  const std::int64_t shift = kx * g.dw - g.pad_left;
  std::int64_t lo = shift >= 0 ? 0 : (-shift + g.sw - 1) / g.sw;
  std::int64_t hi = g.w - 1 - shift < 0 ? 0 : (g.w - 1 - shift) / g.sw + 1;
  lo = std::min(lo, g.ow);
  hi = std::max(lo, std::min(hi, g.ow));
  return {lo, hi, shift};
}

// Columns [lo, hi) where every tap of a kernel row is inside and the taps are neighbours in x
// (stride and dilation 1): there the kernel row is one contiguous run. Empty otherwise. The
// tap-by-tap loops then cover [0, skip_lo) and [skip_hi, ow): everything when it is empty.
struct FullRows {
  std::int64_t lo = 0, hi = 0, skip_lo = 0, skip_hi = 0;
};

inline FullRows full_row_range(const ConvGeometry& g) {
  FullRows f;
  if (g.sw == 1 && g.dw == 1) {
    f.lo = tap_range(g, 0).lo;  // tap ranges shrink from both ends as kx grows
    f.hi = std::max(f.lo, tap_range(g, g.kw - 1).hi);
  }
  f.skip_lo = f.hi > f.lo ? f.lo : g.ow;
  f.skip_hi = f.hi > f.lo ? f.hi : g.ow;
  return f;
}

// One input channel, stride and dilation 1 (a grayscale network's first layer): every tap is a
// single float, so runs do not help. Instead each kernel row of the image row is first copied
// into a zero-padded line, after which a column's kw taps are kw neighbouring floats of that
// line with no bounds at all. KW > 0 fixes the kernel width at compile time (the common 3).
constexpr std::int64_t kMaxLine = 1024;

template <int KW>
void im2col_one_channel_row(const float* xi, std::int64_t oy, const ConvGeometry& g, float* out_row,
                            std::int64_t ld) {
  const std::int64_t kw = KW > 0 ? KW : g.kw, line_len = g.ow + kw - 1;
  float line[kMaxLine];
  for (std::int64_t ky = 0; ky < g.kh; ++ky) {
    const std::int64_t iy = oy - g.pad_top + ky;
    const float* x_row = xi + iy * g.w;
    const bool inside = iy >= 0 && iy < g.h;
    for (std::int64_t q = 0; q < line_len; ++q) {
      const std::int64_t ix = q - g.pad_left;
      line[q] = inside && ix >= 0 && ix < g.w ? x_row[ix] : 0.0f;
    }
    float* out = out_row + ky * kw;
    for (std::int64_t ox = 0; ox < g.ow; ++ox, out += ld)
      for (std::int64_t kx = 0; kx < kw; ++kx) out[kx] = line[ox + kx];
  }
}

}  // namespace

void im2col_nhwc(const float* x, std::int64_t n, const ConvGeometry& g, float* col, std::int64_t ld) {
  const std::int64_t patch = g.patch(), c = g.c, run = g.kw * c;
  const std::int64_t rows = n * g.oh;
  const FullRows full = full_row_range(g);
  const std::int64_t full_lo = full.lo, full_hi = full.hi, skip_lo = full.skip_lo, skip_hi = full.skip_hi;
  const bool par = rows * g.ow * patch >= (1 << 14) && !in_parallel_region();
  const bool one_channel = c == 1 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 && g.ow + g.kw - 1 <= kMaxLine;
  parallel_for(rows, par, [&](std::int64_t r) {
    const std::int64_t img = r / g.oh, oy = r % g.oh;
    const float* xi = x + img * g.h * g.w * c;
    float* out_row = col + r * g.ow * ld;
    if (one_channel) {
      if (g.kw == 3) im2col_one_channel_row<3>(xi, oy, g, out_row, ld);
      else im2col_one_channel_row<0>(xi, oy, g, out_row, ld);
      return;
    }
    for (std::int64_t ky = 0; ky < g.kh; ++ky) {
      const std::int64_t iy = oy * g.sh - g.pad_top + ky * g.dh;
      float* out_ky = out_row + ky * run;
      if (iy < 0 || iy >= g.h) {
        for (std::int64_t ox = 0; ox < g.ow; ++ox) zero_run(out_ky + ox * ld, run);
        continue;
      }
      const float* x_row = xi + iy * g.w * c;
      // Interior: the whole kernel row in one run (stride 1: ix = ox - pad_left).
      for (std::int64_t ox = full_lo; ox < full_hi; ++ox)
        copy_run(out_ky + ox * ld, x_row + (ox - g.pad_left) * c, run);
      // Everything else tap by tap: columns [0, skip_lo) and [skip_hi, ow).
      for (std::int64_t kx = 0; kx < g.kw; ++kx) {
        const TapRange t = tap_range(g, kx);
        float* out = out_ky + kx * c;
        for (const auto& [from, to] : {std::pair{std::int64_t{0}, skip_lo}, std::pair{skip_hi, g.ow}}) {
          const std::int64_t lo = std::clamp(t.lo, from, to), hi = std::clamp(t.hi, lo, to);
          for (std::int64_t ox = from; ox < lo; ++ox) zero_run(out + ox * ld, c);
          for (std::int64_t ox = lo; ox < hi; ++ox) copy_run(out + ox * ld, x_row + (ox * g.sw + t.shift) * c, c);
          for (std::int64_t ox = hi; ox < to; ++ox) zero_run(out + ox * ld, c);
        }
      }
    }
  });
}

void col2im_nhwc(const float* col, std::int64_t n, const ConvGeometry& g, float* x) {
  const std::int64_t patch = g.patch(), c = g.c, run = g.kw * c;
  const std::int64_t img_size = g.h * g.w * c;
  const FullRows full = full_row_range(g);
  const std::int64_t full_lo = full.lo, full_hi = full.hi, skip_lo = full.skip_lo, skip_hi = full.skip_hi;
  const bool par = n > 1 && n * g.oh * g.ow * patch >= (1 << 14) && !in_parallel_region();
  parallel_for(n, par, [&](std::int64_t img) {
    float* xi = x + img * img_size;
    zero_run(xi, img_size);
    const float* in_img = col + img * g.oh * g.ow * patch;
    for (std::int64_t oy = 0; oy < g.oh; ++oy) {
      const float* in_row = in_img + oy * g.ow * patch;
      for (std::int64_t ky = 0; ky < g.kh; ++ky) {
        const std::int64_t iy = oy * g.sh - g.pad_top + ky * g.dh;
        if (iy < 0 || iy >= g.h) continue;
        float* x_row = xi + iy * g.w * c;
        const float* in_ky = in_row + ky * run;
        for (std::int64_t ox = full_lo; ox < full_hi; ++ox)
          add_run(x_row + (ox - g.pad_left) * c, in_ky + ox * patch, run);
        for (std::int64_t kx = 0; kx < g.kw; ++kx) {  // the rest tap by tap, as in im2col
          const TapRange t = tap_range(g, kx);
          const float* in = in_ky + kx * c;
          for (const auto& [from, to] : {std::pair{std::int64_t{0}, skip_lo}, std::pair{skip_hi, g.ow}}) {
            const std::int64_t lo = std::clamp(t.lo, from, to), hi = std::clamp(t.hi, lo, to);
            for (std::int64_t ox = lo; ox < hi; ++ox) add_run(x_row + (ox * g.sw + t.shift) * c, in + ox * patch, c);
          }
        }
      }
    }
  });
}

}  // namespace cnnx::kernels
