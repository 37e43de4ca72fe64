// See conv_gemm.hpp.
#include "kernels/conv_gemm.hpp"

#include <algorithm>
#include <vector>

#include "kernels/gemm_config.hpp"
#include "kernels/gemm_ukernel.hpp"
#include "kernels/im2col.hpp"

namespace cnnx::kernels {

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

std::int64_t conv_packed_kernel_size(std::int64_t patch, std::int64_t cout) {
  return (cout + kNrAvx512 - 1) / kNrAvx512 * kNrAvx512 * patch;
}

void conv_pack_kernel(const float* kernel, std::int64_t patch, std::int64_t cout, float* dst) {
  constexpr std::int64_t nr = kNrAvx512;
  for (std::int64_t j0 = 0; j0 < cout; j0 += nr) {  // sliver j0 / nr: patch rows of nr floats
    const std::int64_t cols = std::min(nr, cout - j0);
    for (std::int64_t k = 0; k < patch; ++k, dst += nr) {
      const float* src = kernel + k * cout + j0;
      for (std::int64_t j = 0; j < cols; ++j) dst[j] = src[j];
      for (std::int64_t j = cols; j < nr; ++j) dst[j] = 0.0f;
    }
  }
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
  const auto ceil_div = [](std::int64_t a, std::int64_t b) { return (a + b - 1) / b; };
  const std::int64_t kc_block = ceil_div(patch, ceil_div(patch, kKcAvx512));
  const std::int64_t slivers = ceil_div(cout, nr);

  const float* packed = packed_kernel;
  const bool has_ep = ep.bias != nullptr || ep.relu;
  // Every output pixel's window corner, walked once (no divisions per tile); past the last
  // pixel the last corner repeats, for the discarded rows of a partial tile.
  thread_local std::vector<const float*> corners;
  const std::int64_t m_tiles = (m + mr - 1) / mr * mr;
  if (corners.size() < static_cast<std::size_t>(m_tiles)) corners.resize(m_tiles);
  {
    std::int64_t q = 0;
    for (std::int64_t img = 0; img < n; ++img)
      for (std::int64_t oy = 0; oy < g.oh; ++oy) {
        const float* row = xpad + (img * p.h + oy * g.sh) * p.w * c;
        for (std::int64_t ox = 0; ox < g.ow; ++ox) corners[q++] = row + ox * g.sw * c;
      }
    for (; q < m_tiles; ++q) corners[q] = corners[m - 1];
  }
  alignas(64) float edge[mr * nr];
  for (std::int64_t js = 0; js < slivers; ++js) {
    const std::int64_t j0 = js * nr, cols = std::min<std::int64_t>(nr, cout - j0);
    const TileEpilogue tile_epi{ep.bias ? ep.bias + j0 : nullptr, ep.relu};
    const float* bsliver = packed + js * patch * nr;
    for (std::int64_t i0 = 0; i0 < m; i0 += mr) {
      const std::int64_t valid = std::min<std::int64_t>(mr, m - i0);
      const float* const* rows = corners.data() + i0;
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

}  // namespace cnnx::kernels
