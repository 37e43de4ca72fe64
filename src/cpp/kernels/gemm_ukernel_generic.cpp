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

void ukernel_generic(std::int64_t kc, const float* ap, std::int64_t a_step, const float* bp, float beta, float* c,
                     std::int64_t ldc) {
  constexpr int kMr = kMrGeneric, kNr = kNrGeneric;
  float acc[kMr][kNr] = {};
  for (std::int64_t p = 0; p < kc; ++p, ap += a_step, bp += kNr) {
    for (int i = 0; i < kMr; ++i) {
      const float a = ap[i];
      for (int j = 0; j < kNr; ++j) acc[i][j] += a * bp[j];
    }
  }
  for (int i = 0; i < kMr; ++i, c += ldc) {
    if (beta == 0.0f) {  // beta == 0 must not read C
      for (int j = 0; j < kNr; ++j) c[j] = acc[i][j];
    } else {
      for (int j = 0; j < kNr; ++j) c[j] = beta * c[j] + acc[i][j];
    }
  }
}

}  // namespace cnnx::kernels
