// Peak probe, AVX-512: 24 independent zmm FMA chains (4-cycle latency x 2 ports needs >= 8;
// more keeps the scheduler saturated). Compiled with -mavx512f -mfma only.
#include <immintrin.h>

#include "kernels/peak_probe.hpp"

namespace cnnx::kernels {

double peak_probe_avx512(std::int64_t iterations) {
  constexpr int kChains = 24;
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(float(i) * 1e-3f);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (std::int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 24
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  __m512 sum = acc[0];
  for (int i = 1; i < kChains; ++i) sum = _mm512_add_ps(sum, acc[i]);
  volatile float sink = _mm512_reduce_add_ps(sum);  // keeps the chains alive
  (void)sink;
  return double(iterations) * kChains * 16 * 2;
}

}  // namespace cnnx::kernels
