// AVX2 GEMM micro-kernel: a 6 x 16 tile of C (contract in gemm_ukernel.hpp).
//
// Why 6 x 16: a row of 16 floats is two ymm registers, so the tile needs 12 accumulators; with
// the two B vectors and one broadcast A value that is 15 of the 16 ymm registers. Twelve
// independent FMA chains cover the 4-5 cycle FMA latency on two ports (8-10 needed), and each
// k step costs 2 vector loads + 6 broadcasts for 12 FMAs, under the two load ports' budget.
//
// Compiled alone with -mavx2 -mfma; dispatch.cpp calls it only on CPUs with AVX2 and FMA.
#include <immintrin.h>

#include "kernels/gemm_config.hpp"
#include "kernels/gemm_ukernel.hpp"

namespace cnnx::kernels {

void ukernel_avx2(std::int64_t kc, const float* ap, std::int64_t a_step, const float* b, std::int64_t b_step,
                  float beta, float* c, std::int64_t ldc, const TileEpilogue* epi) {
  constexpr int kMr = kMrAvx2;
  static_assert(kNrAvx2 == 16, "the tile is two ymm registers wide");
  __m256 lo[kMr], hi[kMr];
#pragma GCC unroll 6
  for (int i = 0; i < kMr; ++i) lo[i] = hi[i] = _mm256_setzero_ps();

  for (std::int64_t p = 0; p < kc; ++p, ap += a_step, b += b_step) {
    const __m256 b0 = _mm256_loadu_ps(b);
    const __m256 b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
    for (int i = 0; i < kMr; ++i) {
      const __m256 a = _mm256_broadcast_ss(ap + i);
      lo[i] = _mm256_fmadd_ps(a, b0, lo[i]);
      hi[i] = _mm256_fmadd_ps(a, b1, hi[i]);
    }
  }

  const __m256 vbeta = _mm256_set1_ps(beta);
  const __m256 zero = _mm256_setzero_ps();
  const bool bias = epi != nullptr && epi->bias != nullptr;
  const bool relu = epi != nullptr && epi->relu;
  const __m256 bias_lo = bias ? _mm256_loadu_ps(epi->bias) : zero;
  const __m256 bias_hi = bias ? _mm256_loadu_ps(epi->bias + 8) : zero;
#pragma GCC unroll 6
  for (int i = 0; i < kMr; ++i, c += ldc) {
    if (beta != 0.0f) {  // beta == 0 must not read C
      lo[i] = _mm256_fmadd_ps(vbeta, _mm256_loadu_ps(c), lo[i]);
      hi[i] = _mm256_fmadd_ps(vbeta, _mm256_loadu_ps(c + 8), hi[i]);
    }
    if (bias) {
      lo[i] = _mm256_add_ps(lo[i], bias_lo);
      hi[i] = _mm256_add_ps(hi[i], bias_hi);
    }
    if (relu) {  // max(v, 0) returns the second operand, 0, for a NaN v
      lo[i] = _mm256_max_ps(lo[i], zero);
      hi[i] = _mm256_max_ps(hi[i], zero);
    }
    _mm256_storeu_ps(c, lo[i]);
    _mm256_storeu_ps(c + 8, hi[i]);
  }
}

}  // namespace cnnx::kernels
