// See conv_gemm.hpp.
#include "kernels/conv_gemm.hpp"

#include <algorithm>
#include <vector>

#include "kernels/gemm_config.hpp"
#include "kernels/gemm_ukernel.hpp"
#include "kernels/im2col.hpp"

namespace cnnx::kernels {

bool conv_forward_implicit(const float* x, std::int64_t n, const ConvGeometry& g, const float* kernel,
                           std::int64_t cout, float* z, const GemmEpilogue& ep, float* scratch) {
#if defined(__x86_64__) || defined(_M_X64)
  // Kernel rows shorter than 16 floats (a one-channel first layer: 3) make the micro-kernel
  // restart its run loop every few k steps, which costs more than the im2col copy it saves
  // (conv1 forward measured at 75 against 108 GFLOP/s with im2col).
  if (active_isa() != Isa::avx512 || g.dw != 1 || g.kw * g.c < 16) return false;
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

  // K packed into NR-wide slivers, k-major, zero past cout (the gemm_ukernel.hpp layout).
  thread_local std::vector<float> packed;
  if (packed.size() < static_cast<std::size_t>(slivers * nr * patch)) packed.resize(slivers * nr * patch);
  for (std::int64_t s = 0; s < slivers; ++s)
    for (std::int64_t k = 0; k < patch; ++k)
      for (std::int64_t j = 0; j < nr; ++j) {
        const std::int64_t col = s * nr + j;
        packed[(s * patch + k) * nr + j] = col < cout ? kernel[k * cout + col] : 0.0f;
      }

  const bool has_ep = ep.bias != nullptr || ep.relu;
  const float* rows[mr];
  alignas(64) float edge[mr * nr];
  for (std::int64_t js = 0; js < slivers; ++js) {
    const std::int64_t j0 = js * nr, cols = std::min<std::int64_t>(nr, cout - j0);
    const TileEpilogue tile_epi{ep.bias ? ep.bias + j0 : nullptr, ep.relu};
    const float* bsliver = packed.data() + js * patch * nr;
    for (std::int64_t i0 = 0; i0 < m; i0 += mr) {
      const std::int64_t valid = std::min<std::int64_t>(mr, m - i0);
      for (int i = 0; i < mr; ++i) {  // past the last pixel: repeat it, the rows are discarded
        const std::int64_t q = i0 + std::min<std::int64_t>(i, valid - 1);
        const std::int64_t img = q / pix, oy = q % pix / g.ow, ox = q % g.ow;
        rows[i] = xpad + ((img * p.h + oy * g.sh) * p.w + ox * g.sw) * c;
      }
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
  (void)x, (void)n, (void)g, (void)kernel, (void)cout, (void)z, (void)ep, (void)scratch;
  return false;
#endif
}

}  // namespace cnnx::kernels
