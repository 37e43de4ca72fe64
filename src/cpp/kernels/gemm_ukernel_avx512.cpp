// AVX-512 GEMM micro-kernel: a 14 x 32 tile of C (contract in gemm_ukernel.hpp).
//
// Why 14 x 32: a row of 32 floats is two zmm registers, so the tile needs 28 accumulators;
// with the two B vectors that is 30 of the 32 zmm registers, and the A value comes in as an
// embedded broadcast operand of the FMA (no register). Each k step issues 28 independent FMAs
// against 2 vector loads + 14 broadcasts: enough independent chains to cover the 4-cycle FMA
// latency on both FMA ports (8 needed), and few enough loads that the two load ports never
// limit. Rows of C are contiguous, so the tile is written with full 64-byte stores.
//
// Compiled alone with -mavx512f -mfma (CMake sets the flag on this file only); dispatch.cpp
// guarantees it is called only on CPUs (and OSes) with AVX-512F enabled.
#include <immintrin.h>

#include "kernels/gemm_config.hpp"
#include "kernels/gemm_ukernel.hpp"

namespace cnnx::kernels {

void ukernel_avx512(std::int64_t kc, const float* ap, std::int64_t a_step, const float* bp, float beta, float* c,
                    std::int64_t ldc) {
  constexpr int kMr = kMrAvx512;
  static_assert(kNrAvx512 == 32, "the tile is two zmm registers wide");
  __m512 lo[kMr], hi[kMr];
#pragma GCC unroll 14
  for (int i = 0; i < kMr; ++i) lo[i] = hi[i] = _mm512_setzero_ps();

  for (std::int64_t p = 0; p < kc; ++p, ap += a_step, bp += 32) {
    const __m512 b0 = _mm512_load_ps(bp);
    const __m512 b1 = _mm512_load_ps(bp + 16);
#pragma GCC unroll 14
    for (int i = 0; i < kMr; ++i) {
      const __m512 a = _mm512_set1_ps(ap[i]);
      lo[i] = _mm512_fmadd_ps(a, b0, lo[i]);
      hi[i] = _mm512_fmadd_ps(a, b1, hi[i]);
    }
  }

  const __m512 vbeta = _mm512_set1_ps(beta);
#pragma GCC unroll 14
  for (int i = 0; i < kMr; ++i, c += ldc) {
    if (beta != 0.0f) {  // beta == 0 must not read C
      lo[i] = _mm512_fmadd_ps(vbeta, _mm512_loadu_ps(c), lo[i]);
      hi[i] = _mm512_fmadd_ps(vbeta, _mm512_loadu_ps(c + 16), hi[i]);
    }
    _mm512_storeu_ps(c, lo[i]);
    _mm512_storeu_ps(c + 16, hi[i]);
  }
}

void ukernel_avx512_rows(std::int64_t kc, const float* a, std::int64_t lda, const float* bp, float beta, float* c,
                         std::int64_t ldc) {
  constexpr int kMr = kMrAvx512;
  __m512 lo[kMr], hi[kMr];
#pragma GCC unroll 14
  for (int i = 0; i < kMr; ++i) lo[i] = hi[i] = _mm512_setzero_ps();

  for (std::int64_t p = 0; p < kc; ++p, ++a, bp += 32) {
    const __m512 b0 = _mm512_load_ps(bp);
    const __m512 b1 = _mm512_load_ps(bp + 16);
#pragma GCC unroll 14
    for (int i = 0; i < kMr; ++i) {
      const __m512 av = _mm512_set1_ps(a[i * lda]);
      lo[i] = _mm512_fmadd_ps(av, b0, lo[i]);
      hi[i] = _mm512_fmadd_ps(av, b1, hi[i]);
    }
  }

  const __m512 vbeta = _mm512_set1_ps(beta);
#pragma GCC unroll 14
  for (int i = 0; i < kMr; ++i, c += ldc) {
    if (beta != 0.0f) {
      lo[i] = _mm512_fmadd_ps(vbeta, _mm512_loadu_ps(c), lo[i]);
      hi[i] = _mm512_fmadd_ps(vbeta, _mm512_loadu_ps(c + 16), hi[i]);
    }
    _mm512_storeu_ps(c, lo[i]);
    _mm512_storeu_ps(c + 16, hi[i]);
  }
}

}  // namespace cnnx::kernels
