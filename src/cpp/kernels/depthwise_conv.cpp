// Depthwise convolution kernels; layout, loop order and threading in depthwise_conv.hpp.
#include "kernels/depthwise_conv.hpp"

#include <algorithm>

#include "cnnx/parallel.hpp"
#include "cnnx/tensor.hpp"

namespace cnnx::kernels {

namespace {

using i64 = std::int64_t;

// Below this many multiply-adds a pass stays on the calling thread: waking the team costs more.
constexpr i64 kParallelWork = 1 << 15;

// The outputs o in [*lo, *hi) whose tap at offset `off` (k * dilation) reads inside the input:
// 0 <= o * s - pad + off < in.
void tap_range(i64 out, i64 in, i64 s, i64 pad, i64 off, i64* lo, i64* hi) {
  const i64 first = pad - off, last = in - 1 + pad - off;  // o * s must lie in [first, last]
  *lo = first <= 0 ? 0 : (first + s - 1) / s;
  *hi = last < 0 ? 0 : std::min(out, last / s + 1);
  if (*lo > *hi) *lo = *hi;
}

// out[j] += a[j] * b[j]: the one inner loop; contiguous channels, so it vectorises.
inline void madd(float* __restrict out, const float* __restrict a, const float* __restrict b, i64 len) {
  for (i64 j = 0; j < len; ++j) out[j] += a[j] * b[j];
}

// e[ix, ci*dm + m] = x[ix, ci]: an input row in the output's channel order.
void expand_row(const float* __restrict x, i64 w, i64 c, i64 dm, float* __restrict e) {
  for (i64 ix = 0; ix < w; ++ix)
    for (i64 ci = 0; ci < c; ++ci)
      for (i64 m = 0; m < dm; ++m) e[(ix * c + ci) * dm + m] = x[ix * c + ci];
}

// One input row of x, in the output's channel order (expanded into e when dm > 1).
const float* input_row(const float* x, i64 b, i64 iy, const ConvGeometry& g, i64 dm, float* e) {
  const float* row = x + (b * g.h + iy) * g.w * g.c;
  if (dm == 1) return row;
  expand_row(row, g.w, g.c, dm, e);
  return e;
}

// Runs rows [0, rows) in slots: contiguous blocks, one per thread, each with its own scratch.
template <class Row>
void for_rows(i64 rows, i64 work, const DepthwiseScratch& ws, Row&& row) {
  const bool par = work >= kParallelWork;
  const i64 slots = std::max<i64>(1, std::min({rows, ws.slots, par ? i64(get_num_threads()) : i64(1)}));
  parallel_for(slots, par && slots > 1, [&](i64 s) {
    float* scratch = ws.data ? ws.data + s * ws.slot_floats : nullptr;
    for (i64 r = s * rows / slots; r < (s + 1) * rows / slots; ++r) row(r, scratch);
  });
}

void forward_row(const float* x, i64 b, i64 oy, const ConvGeometry& g, i64 dm, const float* kernel, const float* bias,
                 float* y, float* e) {
  const i64 cout = g.c * dm;
  float* yr = y + (b * g.oh + oy) * g.ow * cout;
  std::fill(yr, yr + g.ow * cout, 0.0f);
  for (i64 ky = 0; ky < g.kh; ++ky) {
    const i64 iy = oy * g.sh - g.pad_top + ky * g.dh;
    if (iy < 0 || iy >= g.h) continue;
    const float* xr = input_row(x, b, iy, g, dm, e);
    for (i64 kx = 0; kx < g.kw; ++kx) {
      i64 lo, hi;
      tap_range(g.ow, g.w, g.sw, g.pad_left, kx * g.dw, &lo, &hi);
      const float* k = kernel + (ky * g.kw + kx) * cout;
      const float* xp = xr + (lo * g.sw - g.pad_left + kx * g.dw) * cout;
      for (i64 o = lo; o < hi; ++o) madd(yr + o * cout, xp + (o - lo) * g.sw * cout, k, cout);
    }
  }
  if (bias)
    for (i64 o = 0; o < g.ow; ++o)
      for (i64 j = 0; j < cout; ++j) yr[o * cout + j] += bias[j];
}

// dK partial += the taps of output row (b, oy): dz[oy, o, :] * x[iy, ix, :].
void kernel_grad_row(const float* x, const float* dz, i64 b, i64 oy, const ConvGeometry& g, i64 dm, float* part,
                     float* e) {
  const i64 cout = g.c * dm;
  const float* dzr = dz + (b * g.oh + oy) * g.ow * cout;
  for (i64 ky = 0; ky < g.kh; ++ky) {
    const i64 iy = oy * g.sh - g.pad_top + ky * g.dh;
    if (iy < 0 || iy >= g.h) continue;
    const float* xr = input_row(x, b, iy, g, dm, e);
    for (i64 kx = 0; kx < g.kw; ++kx) {
      i64 lo, hi;
      tap_range(g.ow, g.w, g.sw, g.pad_left, kx * g.dw, &lo, &hi);
      float* p = part + (ky * g.kw + kx) * cout;
      const float* xp = xr + (lo * g.sw - g.pad_left + kx * g.dw) * cout;
      for (i64 o = lo; o < hi; ++o) madd(p, dzr + o * cout, xp + (o - lo) * g.sw * cout, cout);
    }
  }
}

// Input row (b, iy) of dx gathers every tap that read it: dz[oy, o, :] * K[ky, kx, :], with
// the ky that hit this row and, per kx, the o whose window covers each ix. Accumulated in the
// output's channel order (in e when dm > 1, then summed over m).
void input_grad_row(const float* dz, i64 b, i64 iy, const ConvGeometry& g, i64 dm, const float* kernel, float* dx,
                    float* e) {
  const i64 cout = g.c * dm;
  float* dxr = dx + (b * g.h + iy) * g.w * g.c;
  float* acc = dm == 1 ? dxr : e;
  std::fill(acc, acc + g.w * cout, 0.0f);
  for (i64 ky = 0; ky < g.kh; ++ky) {
    const i64 t = iy + g.pad_top - ky * g.dh;  // oy * sh when this tap row reaches iy
    if (t < 0 || t % g.sh != 0 || t / g.sh >= g.oh) continue;
    const float* dzr = dz + (b * g.oh + t / g.sh) * g.ow * cout;
    for (i64 kx = 0; kx < g.kw; ++kx) {
      i64 lo, hi;
      tap_range(g.ow, g.w, g.sw, g.pad_left, kx * g.dw, &lo, &hi);
      const float* k = kernel + (ky * g.kw + kx) * cout;
      float* ap = acc + (lo * g.sw - g.pad_left + kx * g.dw) * cout;
      for (i64 o = lo; o < hi; ++o) madd(ap + (o - lo) * g.sw * cout, dzr + o * cout, k, cout);
    }
  }
  if (dm == 1) return;
  for (i64 i = 0; i < g.w * g.c; ++i) {
    float s = 0.0f;
    for (i64 m = 0; m < dm; ++m) s += e[i * dm + m];
    dxr[i] = s;
  }
}

}  // namespace

std::int64_t depthwise_slot_floats(const ConvGeometry& g, std::int64_t dm) {
  return dm == 1 ? 0 : checked_mul(g.w, checked_mul(g.c, dm));
}

std::int64_t depthwise_partial_floats(const ConvGeometry& g, std::int64_t dm) {
  return checked_mul(kDepthwiseGradChunks, checked_mul(checked_mul(g.kh, g.kw), checked_mul(g.c, dm)));
}

void depthwise_forward(const float* x, std::int64_t n, const ConvGeometry& g, std::int64_t dm, const float* kernel,
                       const float* bias, float* y, const DepthwiseScratch& ws) {
  const i64 rows = n * g.oh, work = rows * g.ow * g.c * dm * g.kh * g.kw;
  for_rows(rows, work, ws, [&](i64 r, float* e) { forward_row(x, r / g.oh, r % g.oh, g, dm, kernel, bias, y, e); });
}

void depthwise_input_grad(const float* dz, std::int64_t n, const ConvGeometry& g, std::int64_t dm, const float* kernel,
                          float* dx, const DepthwiseScratch& ws) {
  const i64 rows = n * g.h, work = n * g.oh * g.ow * g.c * dm * g.kh * g.kw;
  for_rows(rows, work, ws, [&](i64 r, float* e) { input_grad_row(dz, r / g.h, r % g.h, g, dm, kernel, dx, e); });
}

void depthwise_kernel_grad(const float* x, const float* dz, std::int64_t n, const ConvGeometry& g, std::int64_t dm,
                           float* dkernel, float* partials, const DepthwiseScratch& ws) {
  const i64 cout = g.c * dm, size = g.kh * g.kw * cout;
  const i64 rows = n * g.oh, chunks = std::min(rows, kDepthwiseGradChunks);
  // Chunk c sums output rows [c * rows / chunks, (c + 1) * rows / chunks) into its own partial.
  for_rows(chunks, rows * g.ow * size, ws, [&](i64 c, float* e) {
    float* part = partials + c * size;
    std::fill(part, part + size, 0.0f);
    for (i64 r = c * rows / chunks; r < (c + 1) * rows / chunks; ++r)
      kernel_grad_row(x, dz, r / g.oh, r % g.oh, g, dm, part, e);
  });
  std::copy(partials, partials + size, dkernel);
  for (i64 c = 1; c < chunks; ++c) {
    const float* part = partials + c * size;
    for (i64 j = 0; j < size; ++j) dkernel[j] += part[j];
  }
}

}  // namespace cnnx::kernels
