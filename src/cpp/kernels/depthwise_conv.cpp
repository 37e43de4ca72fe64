// Depthwise convolution kernels; layout, loop order and threading in depthwise_conv.hpp.
#include "kernels/depthwise_conv.hpp"

#include <algorithm>

#include "cnnx/tensor.hpp"
#include "core/parallel_for.hpp"
#include "kernels/vector_clones.hpp"

namespace cnnx::kernels {

namespace {

using i64 = std::int64_t;

// Below this many multiply-adds a pass stays on the calling thread: waking the team costs more.
constexpr i64 kParallelWork = 1 << 15;

// Channels are taken kBlock at a time: a block's sums stay in registers (4 SSE, 2 AVX or 1
// AVX-512 register) across all the taps of a pixel, or all the pixels of a tap, and only its
// two operands stream from L1, instead of a load and a store of the sum for every tap.
constexpr i64 kBlock = 16;

// The outputs o in [*lo, *hi) whose tap at offset `off` (k * dilation) reads inside the input:
// 0 <= o * s - pad + off < in.
inline void tap_range(i64 out, i64 in, i64 s, i64 pad, i64 off, i64* lo, i64* hi) {
  const i64 first = pad - off, last = in - 1 + pad - off;  // o * s must lie in [first, last]
  *lo = first <= 0 ? 0 : (first + s - 1) / s;
  *hi = last < 0 ? 0 : std::min(out, last / s + 1);
  if (*lo > *hi) *lo = *hi;
}

// acc[j] += a[j] * b[j] for j < len; Full: len == kBlock, a constant trip count the compiler
// turns into whole vectors.
template <bool Full>
inline void madd_block(float* __restrict acc, const float* __restrict a, const float* __restrict b, i64 len) {
  const i64 l = Full ? kBlock : len;
  for (i64 j = 0; j < l; ++j) acc[j] += a[j] * b[j];
}

// e[ix, ci*dm + m] = x[ix, ci]: an input row in the output's channel order.
void expand_row(const float* __restrict x, i64 w, i64 c, i64 dm, float* __restrict e) {
  for (i64 ix = 0; ix < w; ++ix)
    for (i64 ci = 0; ci < c; ++ci)
      for (i64 m = 0; m < dm; ++m) e[(ix * c + ci) * dm + m] = x[ix * c + ci];
}

// dx[i] = sum over m of e[i * dm + m]: a gradient row in the output's channel order folded back
// onto the input channels.
void fold_row(const float* __restrict e, i64 len, i64 dm, float* __restrict dx) {
  for (i64 i = 0; i < len; ++i) {
    float s = 0.0f;
    for (i64 m = 0; m < dm; ++m) s += e[i * dm + m];
    dx[i] = s;
  }
}

// The input rows that output row oy reads, for ky in [ky0, ky1), in the output's channel order:
// rows of x itself, or (dm > 1) rows expanded into the slot's scratch, one per ky.
struct InputRows {
  i64 ky0, ky1;
  const float* image;  // x's image, or the scratch
  i64 iy0, dh, row;    // row ky starts at image + (iy0 + ky * dh) * row
  const float* at(i64 ky) const { return image + (iy0 + ky * dh) * row; }
};

InputRows input_rows(const float* x, i64 b, i64 oy, const ConvGeometry& g, i64 dm, float* e) {
  InputRows r{};
  tap_range(g.kh, g.h, g.dh, g.pad_top, oy * g.sh, &r.ky0, &r.ky1);
  const i64 row = g.w * g.c, iy0 = oy * g.sh - g.pad_top;
  const float* image = x + b * g.h * row;
  if (dm == 1) {
    r.image = image, r.iy0 = iy0, r.dh = g.dh, r.row = row;
    return r;
  }
  for (i64 ky = r.ky0; ky < r.ky1; ++ky) expand_row(image + (iy0 + ky * g.dh) * row, g.w, g.c, dm, e + ky * row * dm);
  r.image = e, r.iy0 = 0, r.dh = 1, r.row = row * dm;
  return r;
}

// One channel block of one output pixel: the sum over its valid taps.
template <bool Full>
inline void forward_block(const InputRows& rows, i64 kx0, i64 kx1, i64 ix0, const ConvGeometry& g, i64 cout,
                          const float* kernel, i64 cb, i64 len, float* acc) {
  for (i64 j = 0; j < kBlock; ++j) acc[j] = 0.0f;
  for (i64 ky = rows.ky0; ky < rows.ky1; ++ky) {
    const float* xr = rows.at(ky) + cb;
    const float* kr = kernel + ky * g.kw * cout + cb;
    for (i64 kx = kx0; kx < kx1; ++kx) madd_block<Full>(acc, xr + (ix0 + kx * g.dw) * cout, kr + kx * cout, len);
  }
}

// Output row (b, oy) into yr: per pixel and channel block, the taps' sum, then the bias (after
// the sum, as Keras adds it after the convolution). e: the slot's scratch (dm > 1).
CNNX_VECTOR_CLONES void forward_row(const float* x, i64 b, i64 oy, const ConvGeometry& g, i64 dm, const float* kernel,
                                    const float* bias, float* yr, float* e) {
  const i64 cout = g.c * dm, full = cout / kBlock * kBlock;
  const InputRows rows = input_rows(x, b, oy, g, dm, e);
  alignas(64) float acc[kBlock];
  for (i64 ox = 0; ox < g.ow; ++ox) {
    i64 kx0, kx1;
    tap_range(g.kw, g.w, g.dw, g.pad_left, ox * g.sw, &kx0, &kx1);
    const i64 ix0 = ox * g.sw - g.pad_left;
    float* yp = yr + ox * cout;
    for (i64 cb = 0; cb < full; cb += kBlock) {
      forward_block<true>(rows, kx0, kx1, ix0, g, cout, kernel, cb, kBlock, acc);
      for (i64 j = 0; j < kBlock; ++j) yp[cb + j] = bias ? acc[j] + bias[cb + j] : acc[j];
    }
    if (full < cout) {
      const i64 len = cout - full;
      forward_block<false>(rows, kx0, kx1, ix0, g, cout, kernel, full, len, acc);
      for (i64 j = 0; j < len; ++j) yp[full + j] = bias ? acc[j] + bias[full + j] : acc[j];
    }
  }
}

// One channel block of one tap: the sum over a row's pixels of dz * x, added to the partial.
// Pixels go in pairs whose products are added first: half the chain of dependent adds.
template <bool Full>
inline void kernel_grad_block(const float* __restrict dzr, const float* __restrict xp, i64 lo, i64 hi, i64 xstep,
                              i64 cout, float* __restrict part, i64 len) {
  alignas(64) float acc[kBlock] = {};
  const i64 l = Full ? kBlock : len;
  i64 o = lo;
  for (; o + 1 < hi; o += 2) {
    const float* a0 = dzr + o * cout;
    const float* a1 = a0 + cout;
    const float* b0 = xp + (o - lo) * xstep;
    const float* b1 = b0 + xstep;
    for (i64 j = 0; j < l; ++j) acc[j] += a0[j] * b0[j] + a1[j] * b1[j];
  }
  if (o < hi) madd_block<Full>(acc, dzr + o * cout, xp + (o - lo) * xstep, len);
  for (i64 j = 0; j < l; ++j) part[j] += acc[j];
}

// One channel block of the bias gradient: the sum over pixels [lo, hi) of dz, added to `part`.
template <bool Full>
inline void bias_grad_block(const float* dzr, i64 lo, i64 hi, i64 cout, float* part, i64 len) {
  alignas(64) float acc[kBlock] = {};
  const i64 l = Full ? kBlock : len;
  for (i64 o = lo; o < hi; ++o)
    for (i64 j = 0; j < l; ++j) acc[j] += dzr[o * cout + j];
  for (i64 j = 0; j < l; ++j) part[j] += acc[j];
}

// dK partial += the taps of output row (b, oy): dz[oy, o, :] * x[iy, ix, :], and with a bias,
// the partial's row past the kernel += the sums of dz (while dz is in L1). The row's pixels
// are taken in tiles of about kTileFloats floats of dz, so that a tile's dz and the x it meets
// stay in L1 while every tap and channel block passes over them.
constexpr i64 kTileFloats = 1024;

CNNX_VECTOR_CLONES void kernel_grad_row(const float* x, const float* dz, i64 b, i64 oy, const ConvGeometry& g, i64 dm,
                                        bool bias, float* part, float* e) {
  const i64 cout = g.c * dm, full = cout / kBlock * kBlock;
  const i64 tile = std::max<i64>(4, kTileFloats / cout);
  const InputRows rows = input_rows(x, b, oy, g, dm, e);
  const float* dzr = dz + (b * g.oh + oy) * g.ow * cout;
  for (i64 o0 = 0; o0 < g.ow; o0 += tile) {
    const i64 o1 = std::min(g.ow, o0 + tile);
    for (i64 ky = rows.ky0; ky < rows.ky1; ++ky) {
      const float* xr = rows.at(ky);
      for (i64 kx = 0; kx < g.kw; ++kx) {
        i64 lo, hi;
        tap_range(g.ow, g.w, g.sw, g.pad_left, kx * g.dw, &lo, &hi);
        lo = std::max(lo, o0), hi = std::min(hi, o1);
        if (lo >= hi) continue;
        float* p = part + (ky * g.kw + kx) * cout;
        const float* xp = xr + (lo * g.sw - g.pad_left + kx * g.dw) * cout;
        for (i64 cb = 0; cb < full; cb += kBlock)
          kernel_grad_block<true>(dzr + cb, xp + cb, lo, hi, g.sw * cout, cout, p + cb, kBlock);
        if (full < cout)
          kernel_grad_block<false>(dzr + full, xp + full, lo, hi, g.sw * cout, cout, p + full, cout - full);
      }
    }
    if (!bias) continue;
    float* pb = part + g.kh * g.kw * cout;
    for (i64 cb = 0; cb < full; cb += kBlock) bias_grad_block<true>(dzr + cb, o0, o1, cout, pb + cb, kBlock);
    if (full < cout) bias_grad_block<false>(dzr + full, o0, o1, cout, pb + full, cout - full);
  }
}

// The kernel taps k that reach input position i along one axis (o * s + k * d = i + pad = reach
// for an output o in [0, out)), as k = first, first + step, ... < end, with the output of the
// first tap and how much it drops per step: the transposed view of tap_range. Keras allows
// s > 1 or d > 1, not both (the layers check it): with s > 1 the taps k = r, r + s, ... reach
// outputs q, q - 1, ... (q, r = reach / s, reach % s, which the caller steps along a row without
// dividing).
struct Taps {
  i64 first, end, step, o_first, o_step;
};

inline Taps taps_reaching(i64 reach, i64 q, i64 r, i64 kmax, i64 s, i64 d, i64 out) {
  Taps t{0, 0, 1, 0, 1};
  if (s == 1) {
    const i64 past = reach - (out - 1);  // k * d >= past keeps o < out
    t.first = past <= 0 ? 0 : (past + d - 1) / d;
    t.end = std::min(kmax, reach / d + 1);
    t.o_first = reach - t.first * d;
    t.o_step = d;
  } else {
    const i64 skip = std::max<i64>(q - (out - 1), 0);
    t.first = r + skip * s;
    t.o_first = q - skip;
    t.end = std::min(kmax, reach + 1);
    t.step = s;
  }
  if (t.first > t.end) t.first = t.end;
  return t;
}

// One channel block of one input pixel: the sum over the taps that read it.
template <bool Full>
inline void input_grad_block(const float* dz_image, const Taps& ty, const Taps& tx, const ConvGeometry& g, i64 cout,
                             const float* kernel, i64 cb, i64 len, float* acc) {
  for (i64 j = 0; j < kBlock; ++j) acc[j] = 0.0f;
  for (i64 ky = ty.first, oy = ty.o_first; ky < ty.end; ky += ty.step, oy -= ty.o_step) {
    const float* dzr = dz_image + oy * g.ow * cout + cb;
    const float* kr = kernel + ky * g.kw * cout + cb;
    for (i64 kx = tx.first, ox = tx.o_first; kx < tx.end; kx += tx.step, ox -= tx.o_step)
      madd_block<Full>(acc, dzr + ox * cout, kr + kx * cout, len);
  }
}

// Strided convolutions: input row (b, iy) of dx gathers every tap that read it, dz[oy, ox, :] *
// K[ky, kx, :], into out (dx's row, or the slot's scratch when dm > 1).
CNNX_VECTOR_CLONES void input_grad_row_strided(const float* dz, i64 b, i64 iy, const ConvGeometry& g, i64 dm,
                                               const float* kernel, float* out) {
  const i64 cout = g.c * dm, full = cout / kBlock * kBlock;
  const float* dz_image = dz + b * g.oh * g.ow * cout;
  const i64 ry = iy + g.pad_top;
  const Taps ty = taps_reaching(ry, ry / g.sh, ry % g.sh, g.kh, g.sh, g.dh, g.oh);
  alignas(64) float acc[kBlock];
  i64 q = g.pad_left / g.sw, r = g.pad_left % g.sw;  // (ix + pad_left) / sw and % sw
  for (i64 ix = 0; ix < g.w; ++ix) {
    const Taps tx = taps_reaching(ix + g.pad_left, q, r, g.kw, g.sw, g.dw, g.ow);
    if (++r == g.sw) r = 0, ++q;
    float* op = out + ix * cout;
    for (i64 cb = 0; cb < full; cb += kBlock) {
      input_grad_block<true>(dz_image, ty, tx, g, cout, kernel, cb, kBlock, acc);
      for (i64 j = 0; j < kBlock; ++j) op[cb + j] = acc[j];
    }
    if (full < cout) {
      input_grad_block<false>(dz_image, ty, tx, g, cout, kernel, full, cout - full, acc);
      for (i64 j = 0; j < cout - full; ++j) op[full + j] = acc[j];
    }
  }
}

// Stride 1: dx is the forward depthwise convolution of dz with the kernel flipped in both
// spatial axes, on dz padded so that every tap reaching a pixel of x is summed (as Conv2D's
// transposed_geometry). dz has cout channels and the flipped kernel one filter per channel.
ConvGeometry transposed(const ConvGeometry& g, i64 dm) {
  ConvGeometry t = g;
  t.h = g.oh, t.w = g.ow, t.c = g.c * dm;
  t.pad_top = (g.kh - 1) * g.dh - g.pad_top;
  t.pad_left = (g.kw - 1) * g.dw - g.pad_left;
  t.oh = g.h, t.ow = g.w;
  return t;
}

// Runs rows [0, rows) in slots: contiguous blocks, one per thread, each with its own scratch.
template <class Row>
void for_rows(i64 rows, i64 work, const DepthwiseScratch& ws, Row&& row) {
  const bool par = work >= kParallelWork;
  const i64 slots = std::max<i64>(1, std::min({rows, ws.slots, par ? i64(get_num_threads()) : i64(1)}));
  parallel_for(slots, par && slots > 1, [&](i64 s) {
    float* scratch = ws.rows ? ws.rows + s * ws.slot_floats : nullptr;
    for (i64 r = s * rows / slots; r < (s + 1) * rows / slots; ++r) row(r, scratch);
  });
}

}  // namespace

std::int64_t depthwise_slot_floats(const ConvGeometry& g, std::int64_t dm) {
  // kh expanded input rows (forward, kernel gradient) or one gradient row (input gradient)
  return dm == 1 ? 0 : checked_mul(checked_mul(g.kh, g.w), checked_mul(g.c, dm));
}

std::int64_t depthwise_kernel_floats(const ConvGeometry& g, std::int64_t dm) {
  return checked_mul(kDepthwiseGradChunks, checked_mul(checked_add(checked_mul(g.kh, g.kw), 1), checked_mul(g.c, dm)));
}

void depthwise_forward(const float* x, std::int64_t n, const ConvGeometry& g, std::int64_t dm, const float* kernel,
                       const float* bias, float* y, const DepthwiseScratch& ws) {
  const i64 rows = n * g.oh, row = g.ow * g.c * dm, work = rows * row * g.kh * g.kw;
  for_rows(rows, work, ws,
           [&](i64 r, float* e) { forward_row(x, r / g.oh, r % g.oh, g, dm, kernel, bias, y + r * row, e); });
}

void depthwise_input_grad(const float* dz, std::int64_t n, const ConvGeometry& g, std::int64_t dm, const float* kernel,
                          float* dx, const DepthwiseScratch& ws) {
  const i64 cout = g.c * dm, rows = n * g.h, row = g.w * g.c, work = n * g.oh * g.ow * cout * g.kh * g.kw;
  if (g.sh > 1 || g.sw > 1) {
    for_rows(rows, work, ws, [&](i64 r, float* e) {
      float* dxr = dx + r * row;
      input_grad_row_strided(dz, r / g.h, r % g.h, g, dm, kernel, dm == 1 ? dxr : e);
      if (dm > 1) fold_row(e, row, dm, dxr);
    });
    return;
  }
  float* flipped = ws.kernel;
  const i64 taps = g.kh * g.kw;
  for (i64 t = 0; t < taps; ++t) std::copy(kernel + t * cout, kernel + (t + 1) * cout, flipped + (taps - 1 - t) * cout);
  const ConvGeometry tg = transposed(g, dm);
  for_rows(rows, work, ws, [&](i64 r, float* e) {
    float* dxr = dx + r * row;
    forward_row(dz, r / g.h, r % g.h, tg, 1, flipped, nullptr, dm == 1 ? dxr : e, nullptr);
    if (dm > 1) fold_row(e, row, dm, dxr);
  });
}

void depthwise_kernel_grad(const float* x, const float* dz, std::int64_t n, const ConvGeometry& g, std::int64_t dm,
                           float* dkernel, float* dbias, const DepthwiseScratch& ws) {
  const i64 cout = g.c * dm, kernel = g.kh * g.kw * cout, size = kernel + (dbias ? cout : 0);
  const i64 rows = n * g.oh, chunks = std::min(rows, kDepthwiseGradChunks);
  float* partials = ws.kernel;
  // Chunk c sums output rows [c * rows / chunks, (c + 1) * rows / chunks) into its own partial.
  for_rows(chunks, rows * g.ow * kernel, ws, [&](i64 c, float* e) {
    float* part = partials + c * size;
    std::fill(part, part + size, 0.0f);
    for (i64 r = c * rows / chunks; r < (c + 1) * rows / chunks; ++r)
      kernel_grad_row(x, dz, r / g.oh, r % g.oh, g, dm, dbias != nullptr, part, e);
  });
  for (i64 c = 1; c < chunks; ++c) {  // in chunk order, into the first partial
    const float* part = partials + c * size;
    for (i64 j = 0; j < size; ++j) partials[j] += part[j];
  }
  std::copy(partials, partials + kernel, dkernel);
  if (dbias) std::copy(partials + kernel, partials + size, dbias);
}

}  // namespace cnnx::kernels
