// Portable GEMM micro-kernel: a 4 x 8 tile of C (contract in gemm_ukernel.hpp).
//
// Plain C++ written for the auto-vectoriser: the inner j loop has a compile-time trip count and
// unit stride, so at the x86-64 baseline (SSE2, 16 xmm registers) g++ -O3 turns each row of 8
// into two xmm accumulators: 8 accumulators + 2 B vectors + 1 broadcast fit in 16 registers,
// enough independent chains to hide the add latency. A bigger tile would spill at SSE2; on
// other targets (NEON has 32 registers) it is merely conservative. Without FMA the products
// round before the add, so this kernel can differ from the SIMD ones in the last bit.
#include "kernels/gemm_config.hpp"
#include "kernels/gemm_ukernel.hpp"

namespace cnnx::kernels {

void ukernel_generic(std::int64_t kc, const float* ap, std::int64_t a_step, const float* b, std::int64_t b_step,
                     float beta, float* c, std::int64_t ldc, const TileEpilogue* epi) {
  constexpr int kMr = kMrGeneric, kNr = kNrGeneric;
  float acc[kMr][kNr] = {};
  for (std::int64_t p = 0; p < kc; ++p, ap += a_step, b += b_step) {
    for (int i = 0; i < kMr; ++i) {
      const float a = ap[i];
      for (int j = 0; j < kNr; ++j) acc[i][j] += a * b[j];
    }
  }
  const float* bias = epi != nullptr ? epi->bias : nullptr;
  const bool relu = epi != nullptr && epi->relu;
  for (int i = 0; i < kMr; ++i, c += ldc) {
    for (int j = 0; j < kNr; ++j) {
      float v = beta == 0.0f ? acc[i][j] : beta * c[j] + acc[i][j];  // beta == 0 must not read C
      if (bias) v += bias[j];
      if (relu) v = v > 0.0f ? v : 0.0f;
      c[j] = v;
    }
  }
}

}  // namespace cnnx::kernels
