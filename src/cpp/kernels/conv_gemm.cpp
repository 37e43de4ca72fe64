// See conv_gemm.hpp.
#include "kernels/conv_gemm.hpp"

#include <algorithm>
#include <vector>

#include "kernels/gemm_config.hpp"
#include "kernels/gemm_ukernel.hpp"
#include "kernels/im2col.hpp"

namespace cnnx::kernels {

namespace {

// Every output pixel's window corner in the padded images, walked once (no divisions per
// tile), in a thread_local grow-only array; past the last pixel the last corner repeats up to a
// multiple of `round`, for the discarded rows of a partial tile.
const float* const* window_corners(const float* xpad, std::int64_t n, const ConvGeometry& g, const PaddedExtent& p,
                                   std::int64_t round) {
  thread_local std::vector<const float*> corners;
  const std::int64_t m = n * g.oh * g.ow, padded = (m + round - 1) / round * round;
  if (corners.size() < static_cast<std::size_t>(padded)) corners.resize(padded);
  std::int64_t q = 0;
  for (std::int64_t img = 0; img < n; ++img)
    for (std::int64_t oy = 0; oy < g.oh; ++oy) {
      const float* row = xpad + (img * p.h + oy * g.sh) * p.w * g.c;
      for (std::int64_t ox = 0; ox < g.ow; ++ox) corners[q++] = row + ox * g.sw * g.c;
    }
  for (; q < padded; ++q) corners[q] = corners[m - 1];
  return corners.data();
}

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// Pixels per K block of the weight gradient (see conv_weight_grad_implicit).
constexpr std::int64_t kDwPixelBlock = 128;

}  // namespace

bool conv_implicit_supported(const ConvGeometry& g) {
#if defined(__x86_64__) || defined(_M_X64)
  // Kernel rows shorter than 16 floats (a one-channel first layer: 3) make the micro-kernel
  // restart its run loop every few k steps, which costs more than the im2col copy it saves
  // (conv1 forward measured at 75 against 108 GFLOP/s with im2col).
  return active_isa() == Isa::avx512 && g.dw == 1 && g.kw * g.c >= 16;
#else
  (void)g;
  return false;
#endif
}

bool conv_forward_implicit(const float* x, std::int64_t n, const ConvGeometry& g, const float* packed_kernel,
                           std::int64_t cout, float* z, const GemmEpilogue& ep, float* scratch) {
#if defined(__x86_64__) || defined(_M_X64)
  if (!conv_implicit_supported(g)) return false;
  constexpr int mr = kMrAvx512, nr = kNrAvx512;
  const PaddedExtent p = padded_extent(g);
  const float* xpad = x;
  if (p.needed) {
    pad_nhwc(x, n, g, scratch);
    xpad = scratch;
  }
  const std::int64_t c = g.c, patch = g.patch(), pix = g.oh * g.ow, m = n * pix;
  const std::int64_t seg_len = g.kw * c, seg_stride = g.dh * p.w * c;
  // The same K blocks as gemm(): equal depth, at most KC.
  const std::int64_t kc_block = ceil_div(patch, ceil_div(patch, kKcAvx512));
  const std::int64_t slivers = ceil_div(cout, nr);

  const float* packed = packed_kernel;
  const bool has_ep = ep.bias != nullptr || ep.relu;
  const float* const* corners = window_corners(xpad, n, g, p, mr);
  alignas(64) float edge[mr * nr];
  for (std::int64_t js = 0; js < slivers; ++js) {
    const std::int64_t j0 = js * nr, cols = std::min<std::int64_t>(nr, cout - j0);
    const TileEpilogue tile_epi{ep.bias ? ep.bias + j0 : nullptr, ep.relu};
    const float* bsliver = packed + js * patch * nr;
    for (std::int64_t i0 = 0; i0 < m; i0 += mr) {
      const std::int64_t valid = std::min<std::int64_t>(mr, m - i0);
      const float* const* rows = corners + i0;
      const bool full = valid == mr && cols == nr;
      float* cij = z + i0 * cout + j0;
      for (std::int64_t k0 = 0; k0 < patch; k0 += kc_block) {
        const std::int64_t kc = std::min(kc_block, patch - k0);
        const float beta = k0 == 0 ? 0.0f : 1.0f;
        const bool last = k0 + kc >= patch;
        if (full) {
          ukernel_avx512_indirect(k0, kc, seg_len, seg_stride, rows, bsliver + k0 * nr, beta, cij, cout,
                                  last && has_ep ? &tile_epi : nullptr);
        } else {  // the edge buffer carries the sum across K blocks
          ukernel_avx512_indirect(k0, kc, seg_len, seg_stride, rows, bsliver + k0 * nr, beta, edge, nr, nullptr);
        }
      }
      if (full) continue;
      for (std::int64_t i = 0; i < valid; ++i)
        for (std::int64_t j = 0; j < cols; ++j) {
          float v = edge[i * nr + j];
          if (ep.bias) v += ep.bias[j0 + j];
          if (ep.relu) v = v > 0.0f ? v : 0.0f;
          cij[i * cout + j] = v;
        }
    }
  }
  return true;
#else
  (void)x, (void)n, (void)g, (void)packed_kernel, (void)cout, (void)z, (void)ep, (void)scratch;
  return false;
#endif
}

std::int64_t conv_weight_grad_scratch_size(const ConvGeometry& g, std::int64_t n) {
  const PaddedExtent p = padded_extent(g);
  return n * p.h * p.w * g.c + kMrAvx512;  // + a partial slice's over-read past the last window
}

bool conv_weight_grad_sums_bias(const ConvGeometry& g) { return g.kw * g.c % kMrAvx512 != 0; }

bool conv_weight_grad_implicit(const float* x, std::int64_t n, const ConvGeometry& g, const float* dz,
                               std::int64_t cout, float beta, float* dk, float* db, float* scratch) {
#if defined(__x86_64__) || defined(_M_X64)
  if (!conv_implicit_supported(g)) return false;
  constexpr int mr = kMrAvx512, nr = kNrAvx512;
  const PaddedExtent p = padded_extent(g);
  // Always the scratch copy, even without padding: a partial 14-row slice reads up to 13
  // floats past its kernel row, which for the last window of x itself would leave the array.
  pad_nhwc(x, n, g, scratch);
  for (std::int64_t i = 0; i < mr; ++i) scratch[n * p.h * p.w * g.c + i] = 0.0f;
  const std::int64_t r = n * g.oh * g.ow, seg_len = g.kw * g.c, seg_stride = g.dh * p.w * g.c;
  const float* const* corners = window_corners(scratch, n, g, p, 1);
  // The B operand (K runs over pixels): dz read in place, 32 columns of a row per k step, when
  // its rows hold whole slivers; otherwise packed into zero-padded NR-wide slivers, pixel-major
  // (an in-place partial sliver would read past the end of dz). Packing cost 2% of a conv2
  // forward + weight gradient (perf, 1 thread).
  const bool in_place = cout % nr == 0;
  thread_local std::vector<float> packed;
  if (!in_place) {
    if (packed.size() < static_cast<std::size_t>(packed_b_size(Isa::avx512, r, cout)))
      packed.resize(packed_b_size(Isa::avx512, r, cout));
    pack_b(Isa::avx512, r, cout, dz, cout, 1, packed.data());
  }
  const std::int64_t b_step = in_place ? cout : nr;
  // Short K blocks, pixel blocks outermost: one block's B slivers and the window rows its
  // pixels read (about 12 + 18 KB for the article's conv2) stay in L1 while all the 14-row
  // slices of dK go past them. With the blocks of gemm() (196 pixels) each slice re-read its
  // windows from L2, and this GEMM ran at 55% of peak against 75% for the forward one.
  const std::int64_t kc_block = ceil_div(r, ceil_div(r, kDwPixelBlock));
  const std::int64_t slices = ceil_div(seg_len, mr), slivers = ceil_div(cout, nr);
  // Partial tiles (the last slice of a kernel row, the last columns) sum in their own buffer
  // across the pixel blocks, then merge: writing 14 rows would run into the next kernel row's.
  thread_local std::vector<float> edges;
  if (edges.size() < static_cast<std::size_t>(slivers * g.kh * slices * mr * nr))
    edges.resize(slivers * g.kh * slices * mr * nr);
  for (std::int64_t k0 = 0; k0 < r; k0 += kc_block) {
    const std::int64_t kc = std::min(kc_block, r - k0);
    for (std::int64_t js = 0; js < slivers; ++js) {
      const std::int64_t j0 = js * nr, cols = std::min<std::int64_t>(nr, cout - j0);
      const float* bblock = in_place ? dz + k0 * cout + j0 : packed.data() + j0 * r + k0 * nr;
      // Rows of dK in slices of 14 that never cross a kernel row (ky), so that each slice's
      // 14 values for one pixel are contiguous in the padded image.
      for (std::int64_t ky = 0; ky < g.kh; ++ky) {
        for (std::int64_t sl = 0; sl < slices; ++sl) {
          const std::int64_t i0 = sl * mr, rows = std::min<std::int64_t>(mr, seg_len - i0);
          const std::int64_t off = ky * seg_stride + i0;
          // The first kernel row's partial slice also sums dz into its spare last row (db).
          const bool ones = db != nullptr && ky == 0 && rows < mr;
          if (rows == mr && cols == nr) {
            float* cij = dk + (ky * seg_len + i0) * cout + j0;
            ukernel_avx512_gather(kc, corners + k0, off, bblock, b_step, k0 == 0 ? beta : 1.0f, cij, cout, false);
          } else {
            float* e = edges.data() + ((js * g.kh + ky) * slices + sl) * mr * nr;
            ukernel_avx512_gather(kc, corners + k0, off, bblock, b_step, k0 == 0 ? 0.0f : 1.0f, e, nr, ones);
          }
        }
      }
    }
  }
  for (std::int64_t js = 0; js < slivers; ++js) {  // merge the partial tiles
    const std::int64_t j0 = js * nr, cols = std::min<std::int64_t>(nr, cout - j0);
    for (std::int64_t ky = 0; ky < g.kh; ++ky)
      for (std::int64_t sl = 0; sl < slices; ++sl) {
        const std::int64_t i0 = sl * mr, rows = std::min<std::int64_t>(mr, seg_len - i0);
        if (rows == mr && cols == nr) continue;
        const float* e = edges.data() + ((js * g.kh + ky) * slices + sl) * mr * nr;
        float* cij = dk + (ky * seg_len + i0) * cout + j0;
        for (std::int64_t i = 0; i < rows; ++i)
          for (std::int64_t j = 0; j < cols; ++j)
            cij[i * cout + j] = beta == 0.0f ? e[i * nr + j] : cij[i * cout + j] + e[i * nr + j];
        if (db != nullptr && ky == 0 && rows < mr)
          for (std::int64_t j = 0; j < cols; ++j) db[j0 + j] = e[(mr - 1) * nr + j];
      }
  }
  return true;
#else
  (void)x, (void)n, (void)g, (void)dz, (void)cout, (void)beta, (void)dk, (void)db, (void)scratch;
  return false;
#endif
}

}  // namespace cnnx::kernels
